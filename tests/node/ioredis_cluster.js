// An ioredis Cluster client against a Cairn cluster (tests/integration/orchestrator/
// test_redis_cluster.py): it reads the slot map from one machine, then writes and reads keys
// over every slot, runs a pipeline and a MULTI on one hash tag, and prints what it saw as JSON.
// Usage: node ioredis_cluster.js PORT COUNT
'use strict';
const Redis = require('ioredis');

async function main() {
  const port = Number(process.argv[2]);
  const count = Number(process.argv[3] || 300);
  const cluster = new Redis.Cluster([{ host: '127.0.0.1', port }], {
    scaleReads: 'master',
    redisOptions: { connectTimeout: 5000, commandTimeout: 10000 },
    clusterRetryStrategy: (times) => (times > 5 ? null : 200),
  });
  const result = { errors: [], mismatches: 0, nodes: 0 };
  try {
    for (let i = 0; i < count; i++) await cluster.set(`io:${i}`, `value${i}`);
    for (let i = 0; i < count; i++) {
      if ((await cluster.get(`io:${i}`)) !== `value${i}`) result.mismatches++;
    }
    // Auto-pipelined commands across slots: ioredis groups them per node.
    const piped = await Promise.all(
      Array.from({ length: count }, (_, i) => cluster.get(`io:${i}`)));
    result.piped_ok = piped.every((v, i) => v === `value${i}`);
    const multi = await cluster.multi().set('{io}.a', '1').incr('{io}.a').get('{io}.a').exec();
    result.multi = multi.map(([err, v]) => (err ? `ERR ${err.message}` : v));
    result.nodes = cluster.nodes('master').length;
  } catch (e) {
    result.errors.push(String(e && e.message ? e.message : e));
  } finally {
    cluster.disconnect();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main();
