#include "orchestrator/dashboard.h"

#include <string>

#include "orchestrator/web_assets.h"

namespace cairn::orchestrator {
namespace {

// Plain JavaScript and CSS, no framework: it must work from a fresh Debian machine with no
// network. Ids are shown as text (they exceed JavaScript's 2^53 integers, so the page reads the
// raw JSON text for them instead of doing arithmetic).
constexpr std::string_view kHtml = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cairn</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
th{background:#f4f4f4}.down{color:#b36b00}.dead{color:#c00}.up{color:#080}
#err{color:#c00}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}.ok{color:#080}.warn{color:#b36b00}.bad{color:#c00}
.charts{display:flex;gap:1.5rem;flex-wrap:wrap}.chart{width:520px;height:220px}
progress{width:8rem}
</style>@UPLOT@</head><body>
<h1>Cairn cluster</h1><div id="err"></div>
<div class="cards" id="cards"></div>
<div id="status"></div>
<h2>Load over time</h2><div class="charts"><div><b>ops/s</b><div id="ops" class="chart"></div></div><div><b>p99 (ms)</b><div id="p99" class="chart"></div></div></div>
<h2>Ring</h2><div style="display:flex;gap:2rem;align-items:flex-start"><svg id="ringpic" width="260" height="260" viewBox="-130 -130 260 260"></svg><table id="shardload"></table></div>
<h2>Hot shards and keys</h2><div id="hot"></div>
<h2>Capacity</h2><div id="capacity"></div><table id="capacity-shards"></table>
<h2>Machines</h2><table id="machines"></table>
<h2>Shards</h2><table id="shards"></table>
<h2>Migrations</h2><table id="migrations"></table>
<h2>Ranges</h2><table id="ring"></table>
<h2>Recent events</h2><table id="events"></table>
<script>
// Big integers (machine ids) must not lose digits: quote them before JSON.parse.
function parse(text){return JSON.parse(text.replace(/([\[:,]\s*)(\d{16,})(?=\s*[,\]}])/g,'$1"$2"'));}
function orch(o){if(!o)return '';const since=o.leader_since_ms?new Date(Number(o.leader_since_ms)).toISOString():'-';const e=(o.etcd||[]).map(x=>esc(x.name)+(x.healthy?' ok':' DOWN')+(x.leader?'*':'')).join(', ');return '<br>orchestrators: leader <b>'+esc(o.leader||'none')+'</b> since '+esc(since)+' &middot; this one ('+esc(o.self)+') is '+esc(o.role)+' &middot; etcd: '+e;}
async function get(path){const r=await fetch(path);if(!r.ok&&r.status!==404)throw new Error(path+': '+r.status);return parse(await r.text());}
function esc(v){return String(v).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));}
function table(id,head,rows){document.getElementById(id).innerHTML='<tr>'+head.map(h=>'<th>'+h+'</th>').join('')+'</tr>'+rows.map(r=>'<tr>'+r.map(c=>'<td>'+c+'</td>').join('')+'</tr>').join('');}
// Charts: uPlot when the build compiled it in, else a polyline in SVG.
const charts={};
function chart(id,xs,series,names){
 const el=document.getElementById(id);
 if(window.uPlot){
  const data=[xs].concat(series);
  if(!charts[id]||charts[id].series.length!==series.length+1){
   el.innerHTML='';
   const colors=['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b'];
   charts[id]=new uPlot({width:520,height:200,axes:[{},{size:64}],series:[{}].concat(names.map((n,i)=>({label:n,stroke:colors[i%colors.length]})))},data,el);
  }else charts[id].setData(data);
  return;
 }
 const w=520,h=200,max=Math.max(1,...series.flat()),t0=xs[0]||0,t1=Math.max(t0+1,xs[xs.length-1]||1);
 const lines=series.map((ys,i)=>'<polyline fill="none" stroke="'+['#1f77b4','#d62728','#2ca02c','#ff7f0e'][i%4]+'" points="'+ys.map((y,j)=>((xs[j]-t0)/(t1-t0)*w).toFixed(1)+','+(h-y/max*h).toFixed(1)).join(' ')+'"/>').join('');
 el.innerHTML='<svg width="'+w+'" height="'+(h+20)+'"><text x="0" y="12" font-size="11">max '+Math.round(max)+'</text>'+lines+'</svg>';
}
// Load of a shard, 0..1 of the busiest, as a colour from green to red.
function heat(f){return 'hsl('+Math.round(120*(1-Math.min(1,f)))+',70%,45%)';}
function ringPicture(ring,opsOf){
 const max=Math.max(1,...Object.values(opsOf));let out='';
 for(const r of ring||[]){
  const a0=Number(BigInt(r.start)*10000n/(1n<<64n))/10000*2*Math.PI;
  const end=BigInt(r.end)===0n?(1n<<64n):BigInt(r.end);
  const a1=Number(end*10000n/(1n<<64n))/10000*2*Math.PI;
  const p=(a,rad)=>(rad*Math.sin(a)).toFixed(1)+' '+(-rad*Math.cos(a)).toFixed(1);
  const large=a1-a0>Math.PI?1:0;
  out+='<path d="M '+p(a0,120)+' A 120 120 0 '+large+' 1 '+p(a1,120)+' L '+p(a1,70)+' A 70 70 0 '+large+' 0 '+p(a0,70)+' Z" fill="'+heat((opsOf[r.shard]||0)/max)+'" stroke="#fff"><title>shard '+esc(r.shard)+' ['+esc(r.start)+', '+esc(r.end)+')</title></path>';
 }
 document.getElementById('ringpic').innerHTML=out+'<text text-anchor="middle" y="5" font-size="13">ring by load</text>';
}
// cairn dev runs machine i on 127.0.0.1:(first port + i) and calls it m<i>.
function clockOf(c){if(!c)return '-';const a=-c.offset_ms,t=(a>=0?'+':'')+a+' ms';return c.in_bound?esc(t):'<span class="dead" title="coordinates no writes">OFF '+esc(t)+'</span>';}
function devNames(machines){
 const ports=(machines||[]).map(x=>String(x.address).split(':')),local=ports.every(p=>p[0]==='127.0.0.1');
 const first=Math.min(...ports.map(p=>Number(p[1])));
 const names={};for(const x of machines||[])names[x.id]=local?'m'+(Number(String(x.address).split(':')[1])-first):String(x.address);
 return names;
}
const phases=['queued','staging','catchup','cutover','cleanup','done'];
async function refresh(){
 try{
  const bytes=b=>b==null?'-':b>=1073741824?(b/1073741824).toFixed(1)+' GiB':b>=1048576?(b/1048576).toFixed(1)+' MiB':b>=1024?(b/1024).toFixed(1)+' KiB':Math.round(b)+' B';
  const [s,m,sh,ring,ev,mig,load,cap]=await Promise.all([get('/v1/status'),get('/v1/machines'),get('/v1/shards'),get('/v1/ring'),get('/v1/events'),get('/v1/migrations'),get('/v1/load?history=1'),get('/v1/capacity')]);
  const shardsLoad=(load&&load.shards)||[],opsOf={};
  for(const x of shardsLoad)opsOf[x.shard]=(x.reads_per_sec||0)+(x.writes_per_sec||0);
  // Per-second histories summed over shards by time (ops) and their largest p99.
  const byTime=new Map();
  for(const x of shardsLoad)for(const p of ((x.history||{}).seconds||[])){const t=Math.round(Number(p.time_ms)/1000);const e=byTime.get(t)||{ops:0,p99:0};e.ops+=p.reads_per_sec+p.writes_per_sec;e.p99=Math.max(e.p99,p.p99_us/1000);byTime.set(t,e);}
  const ts=[...byTime.keys()].sort((a,b)=>a-b).slice(-300);
  chart('ops',ts,[ts.map(t=>byTime.get(t).ops)],['ops/s']);
  chart('p99',ts,[ts.map(t=>byTime.get(t).p99)],['p99 ms']);
  ringPicture(ring,opsOf);
  const mcc=s.machines||{},active=(mig||[]).filter(x=>x.active).length;
  const hotCount=(((load||{}).hot||{}).shards||[]).filter(x=>x.hot).length;
  const card=(label,value,cls)=>'<div class="card">'+label+'<b class="'+cls+'">'+esc(value)+'</b></div>';
  document.getElementById('cards').innerHTML=card('machines up',mcc.up+' / '+mcc.total,mcc.down||mcc.dead?'bad':'ok')+card('shards',s.shards,'ok')+card('ops/s',Math.round(Object.values(opsOf).reduce((a,b)=>a+b,0)),'ok')+card('hot shards',hotCount,hotCount?'bad':'ok')+card('migrations',active,active?'warn':'ok')+card('capacity',(cap&&cap.machines_to_add)?'add '+cap.machines_to_add:'ok',(cap&&cap.machines_to_add)?'warn':'ok');
  const names=devNames(m);
  table('shardload',['shard','ops/s','reads/s','writes/s','keys','stored','p99'],shardsLoad.map(x=>['<span style="color:'+heat(opsOf[x.shard]/Math.max(1,...Object.values(opsOf)))+'">&#9632;</span> '+esc(x.shard),esc(Math.round(opsOf[x.shard])),esc(Math.round(x.reads_per_sec)),esc(Math.round(x.writes_per_sec)),esc(x.keys),bytes(x.bytes),esc((x.p99_us/1000).toFixed(2))+' ms']));
  const hot=(load&&load.hot)||{};
  const hotLines=(hot.shards||[]).map(x=>'shard '+esc(x.shard)+': '+esc(Math.round(x.ops_per_sec))+' ops/s (median '+esc(Math.round(x.median_ops_per_sec))+'), over the line for '+esc(x.over_for_s)+' s'+(x.hot?' <b>HOT</b>':'')+(x.cooling?', cooling down':'')).concat((hot.hot_keys||[]).map(k=>'hot key <b>'+esc(k.key)+'</b> on shard '+esc(k.shard)+': '+esc(Math.round(k.ops_per_sec))+' ops/s (not split)')).concat((hot.held||[]).map(h=>'shard '+esc(h.shard)+' not split: '+esc(h.why)));
  document.getElementById('hot').innerHTML=hotLines.length?hotLines.join('<br>'):'none';
  const days=d=>d==null?'-':Number(d).toFixed(1);
  document.getElementById('capacity').textContent=(cap&&cap.recommendation)||'';
  table('capacity-shards',['shard','stored','growth/day','ops/s per machine','growth/day','days to disk','days to ops'],((cap&&cap.shards)||[]).map(x=>[esc(x.shard),bytes(x.bytes),bytes(x.bytes_per_day),esc(Math.round(x.machine_ops_per_sec)),esc(Math.round(x.ops_per_day)),days(x.days_to_disk_budget),days(x.days_to_ops_budget)]));
  const mc=s.machines||{};
  document.getElementById('status').innerHTML='epoch <b>'+esc(s.epoch)+'</b> &middot; RF '+esc(s.replication_factor)+' &middot; '+esc(s.shards)+' shards &middot; machines: '+esc(mc.total)+' ('+esc(mc.up)+' up, '+esc(mc.down)+' down, '+esc(mc.dead)+' dead, '+esc(mc.spare)+' spare) &middot; spares target '+esc(s.spares_target)+orch(s.orchestrators);
  table('machines',['name','id','address','state','health','shard','role','ops/s','clock','last heartbeat'],(m||[]).map(x=>[esc(names[x.id]),esc(x.id),esc(x.address),esc(x.state),'<span class="'+esc(x.health)+'">'+esc(x.health)+'</span>',esc(x.shard),esc(x.role),esc(Math.round((x.load||{}).ops_per_sec||0)),clockOf(x.clock),esc(x.last_heartbeat_ms_ago)+' ms ago']));
  table('shards',['id','leader','replicas','extras','joining','ranges'],(sh||[]).map(x=>[esc(x.id),esc(x.leader),esc((x.replicas||[]).join(', ')),esc((x.extras||[]).join(', ')),esc((x.joining||[]).join(', ')),esc(x.ranges)]));
  table('migrations',['id','kind','range','source → target','progress','phase','copied','lag','rate','ETA','fence ms','error'],(mig||[]).slice(-30).reverse().map(x=>[esc(x.id),esc(x.kind),esc(x.start)+'–'+esc(x.end),esc(x.source)+' → '+esc(x.target),'<progress max="'+(phases.length-1)+'" value="'+Math.max(0,phases.indexOf(x.phase))+'"></progress>',esc(x.phase)+(x.paused?' (paused)':''),esc(x.keys)+' keys, '+bytes(x.bytes),esc(x.lag),bytes(x.rate)+'/s',x.eta_s==null?'-':esc(Math.round(x.eta_s))+' s',esc(x.fence_ms_last)+' (max '+esc(x.fence_ms_max)+')',esc(x.error||'')]));
  table('ring',['start','end','shard'],(ring||[]).map(x=>[esc(x.start),esc(x.end),esc(x.shard)]));
  table('events',['#','time','event'],(ev||[]).slice(-30).reverse().map(x=>[esc(x.seq),esc(new Date(Number(x.time_ms)).toLocaleTimeString()),esc(x.message)]));
  document.getElementById('err').textContent='';
 }catch(e){document.getElementById('err').textContent='cannot reach the orchestrator: '+e.message;}
}
refresh();setInterval(refresh,2000);
</script></body></html>
)html";

}  // namespace

std::string_view dashboard_html() {
  // Built once: the page with the chart library's tags when the build compiled it in.
  static const std::string page = [] {
    std::string html(kHtml);
    const std::string_view tags =
        kUplotJs.empty() ? ""
                         : R"(<link rel="stylesheet" href="/assets/uplot.css">)"
                           R"(<script src="/assets/uplot.js"></script>)";
    const size_t at = html.find("@UPLOT@");
    if (at != std::string::npos) html.replace(at, 7, tags);
    return html;
  }();
  return page;
}

}  // namespace cairn::orchestrator
