#include "orchestrator/dashboard.h"

namespace cairn::orchestrator {
namespace {

// Plain JavaScript and CSS, no framework: it must work from a fresh Debian machine with no
// network. Ids are shown as text (they exceed JavaScript's 2^53 integers, so the page reads the
// raw JSON text for them instead of doing arithmetic).
constexpr std::string_view kHtml = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cairn</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
th{background:#f4f4f4}.down{color:#b36b00}.dead{color:#c00}.up{color:#080}
#err{color:#c00}
</style></head><body>
<h1>Cairn cluster</h1><div id="err"></div>
<div id="status"></div>
<h2>Hot shards and keys</h2><div id="hot"></div>
<h2>Capacity</h2><div id="capacity"></div><table id="capacity-shards"></table>
<h2>Machines</h2><table id="machines"></table>
<h2>Shards</h2><table id="shards"></table>
<h2>Migrations</h2><table id="migrations"></table>
<h2>Ring</h2><table id="ring"></table>
<h2>Recent events</h2><table id="events"></table>
<script>
// Big integers (machine ids) must not lose digits: quote them before JSON.parse.
function parse(text){return JSON.parse(text.replace(/([\[:,]\s*)(\d{16,})(?=\s*[,\]}])/g,'$1"$2"'));}
function orch(o){if(!o)return '';const since=o.leader_since_ms?new Date(Number(o.leader_since_ms)).toISOString():'-';const e=(o.etcd||[]).map(x=>esc(x.name)+(x.healthy?' ok':' DOWN')+(x.leader?'*':'')).join(', ');return '<br>orchestrators: leader <b>'+esc(o.leader||'none')+'</b> since '+esc(since)+' &middot; this one ('+esc(o.self)+') is '+esc(o.role)+' &middot; etcd: '+e;}
async function get(path){const r=await fetch(path);if(!r.ok&&r.status!==404)throw new Error(path+': '+r.status);return parse(await r.text());}
function esc(v){return String(v).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));}
function table(id,head,rows){document.getElementById(id).innerHTML='<tr>'+head.map(h=>'<th>'+h+'</th>').join('')+'</tr>'+rows.map(r=>'<tr>'+r.map(c=>'<td>'+c+'</td>').join('')+'</tr>').join('');}
async function refresh(){
 try{
  const bytes=b=>b==null?'-':b>=1073741824?(b/1073741824).toFixed(1)+' GiB':b>=1048576?(b/1048576).toFixed(1)+' MiB':b>=1024?(b/1024).toFixed(1)+' KiB':Math.round(b)+' B';
  const [s,m,sh,ring,ev,mig,load,cap]=await Promise.all([get('/v1/status'),get('/v1/machines'),get('/v1/shards'),get('/v1/ring'),get('/v1/events'),get('/v1/migrations'),get('/v1/load'),get('/v1/capacity')]);
  const hot=(load&&load.hot)||{};
  const hotLines=(hot.shards||[]).map(x=>'shard '+esc(x.shard)+': '+esc(Math.round(x.ops_per_sec))+' ops/s (median '+esc(Math.round(x.median_ops_per_sec))+'), over the line for '+esc(x.over_for_s)+' s'+(x.hot?' <b>HOT</b>':'')+(x.cooling?', cooling down':'')).concat((hot.hot_keys||[]).map(k=>'hot key <b>'+esc(k.key)+'</b> on shard '+esc(k.shard)+': '+esc(Math.round(k.ops_per_sec))+' ops/s (not split)')).concat((hot.held||[]).map(h=>'shard '+esc(h.shard)+' not split: '+esc(h.why)));
  document.getElementById('hot').innerHTML=hotLines.length?hotLines.join('<br>'):'none';
  const days=d=>d==null?'-':Number(d).toFixed(1);
  document.getElementById('capacity').textContent=(cap&&cap.recommendation)||'';
  table('capacity-shards',['shard','stored','growth/day','ops/s per machine','growth/day','days to disk','days to ops'],((cap&&cap.shards)||[]).map(x=>[esc(x.shard),bytes(x.bytes),bytes(x.bytes_per_day),esc(Math.round(x.machine_ops_per_sec)),esc(Math.round(x.ops_per_day)),days(x.days_to_disk_budget),days(x.days_to_ops_budget)]));
  const mc=s.machines||{};
  document.getElementById('status').innerHTML='epoch <b>'+esc(s.epoch)+'</b> &middot; RF '+esc(s.replication_factor)+' &middot; '+esc(s.shards)+' shards &middot; machines: '+esc(mc.total)+' ('+esc(mc.up)+' up, '+esc(mc.down)+' down, '+esc(mc.dead)+' dead, '+esc(mc.spare)+' spare) &middot; spares target '+esc(s.spares_target)+orch(s.orchestrators);
  table('machines',['id','address','state','health','shard','role','ops/s','last heartbeat'],(m||[]).map(x=>[esc(x.id),esc(x.address),esc(x.state),'<span class="'+esc(x.health)+'">'+esc(x.health)+'</span>',esc(x.shard),esc(x.role),esc(Math.round((x.load||{}).ops_per_sec||0)),esc(x.last_heartbeat_ms_ago)+' ms ago']));
  table('shards',['id','leader','replicas','extras','joining','ranges'],(sh||[]).map(x=>[esc(x.id),esc(x.leader),esc((x.replicas||[]).join(', ')),esc((x.extras||[]).join(', ')),esc((x.joining||[]).join(', ')),esc(x.ranges)]));
  table('migrations',['id','kind','range','source → target','phase','copied','lag','rate','ETA','fence ms','error'],(mig||[]).slice(-30).reverse().map(x=>[esc(x.id),esc(x.kind),esc(x.start)+'–'+esc(x.end),esc(x.source)+' → '+esc(x.target),esc(x.phase)+(x.paused?' (paused)':''),esc(x.keys)+' keys, '+bytes(x.bytes),esc(x.lag),bytes(x.rate)+'/s',x.eta_s==null?'-':esc(Math.round(x.eta_s))+' s',esc(x.fence_ms_last)+' (max '+esc(x.fence_ms_max)+')',esc(x.error||'')]));
  table('ring',['start','end','shard'],(ring||[]).map(x=>[esc(x.start),esc(x.end),esc(x.shard)]));
  table('events',['#','time','event'],(ev||[]).slice(-30).reverse().map(x=>[esc(x.seq),esc(new Date(Number(x.time_ms)).toLocaleTimeString()),esc(x.message)]));
  document.getElementById('err').textContent='';
 }catch(e){document.getElementById('err').textContent='cannot reach the orchestrator: '+e.message;}
}
refresh();setInterval(refresh,2000);
</script></body></html>
)html";

}  // namespace

std::string_view dashboard_html() { return kHtml; }

}  // namespace cairn::orchestrator
