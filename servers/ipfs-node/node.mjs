// A js-ipfs node for jupyter-publish tests and tutorials: offline, loopback only.
//
//   node node.mjs --repo DIR [--api-port 0] [--gateway-port 0]
//
// Serves the Kubo-style HTTP RPC API (POST /api/v0/...) and a read-only gateway
// (GET /ipfs/CID). Port 0 picks a free port; once both listen, one JSON line on
// stdout gives the bound addresses. SIGTERM or SIGINT stops everything cleanly, so
// the repo lock is released (a SIGKILLed repo stays locked for a while: use a fresh one);
// so does the death of the parent process.
import { parseArgs } from 'node:util'
import { create } from 'ipfs-core'
import { HttpApi } from 'ipfs-http-server'
import { HttpGateway } from 'ipfs-http-gateway'

const { values: args } = parseArgs({
  options: {
    repo: { type: 'string' },
    'api-port': { type: 'string', default: '0' },
    'gateway-port': { type: 'string', default: '0' }
  }
})
if (!args.repo) {
  console.error('usage: node node.mjs --repo DIR [--api-port N] [--gateway-port N]')
  process.exit(2)
}

const ipfs = await create({
  repo: args.repo,
  offline: true,
  start: true,
  silent: true,
  preload: { enabled: false },
  config: {
    Addresses: {
      API: `/ip4/127.0.0.1/tcp/${args['api-port']}`,
      Gateway: `/ip4/127.0.0.1/tcp/${args['gateway-port']}`,
      Swarm: []
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } }
  }
})
const api = new HttpApi(ipfs)
await api.start()
const gateway = new HttpGateway(ipfs)
await gateway.start()

const apiPort = api._apiServers[0].info.port
const gatewayPort = gateway._gatewayServers[0].info.port
const { id } = await ipfs.id()
const { version } = await ipfs.version()
console.log(JSON.stringify({
  ipfs_node: 'ready',
  api: `http://127.0.0.1:${apiPort}`,
  api_multiaddr: `/ip4/127.0.0.1/tcp/${apiPort}`,
  gateway: `http://127.0.0.1:${gatewayPort}`,
  gateway_multiaddr: `/ip4/127.0.0.1/tcp/${gatewayPort}`,
  id: id.toString(),
  version,
  pid: process.pid
}))

let stopping = false
async function stop (signal) {
  if (stopping) return
  stopping = true
  // Never hang on shutdown: the launcher waits, then kills.
  setTimeout(() => process.exit(1), 10000).unref()
  try {
    await gateway.stop()
    await api.stop()
    await ipfs.stop()
    console.error(`ipfs node stopped on ${signal}`)
    process.exit(0)
  } catch (err) {
    console.error(`ipfs node failed to stop cleanly: ${err}`)
    process.exit(1)
  }
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))

// If whoever started us dies without stopping us (a killed test run), stop too
// rather than linger on as an orphan.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) stop('parent exit')
}, 1000).unref()
