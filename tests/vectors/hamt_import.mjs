// Reference CIDs from the npm ipfs-unixfs-importer (independent of our code).
// usage: node hamt_import.mjs <folder> <0|1>   (run where ipfs-unixfs-importer is installed)
// v0: profile 'unixfs-v0-2015' (Kubo defaults: CIDv0, file leaves, links-bytes sharding);
// v1: cidVersion 1, raw leaves, links-bytes sharding (Kubo's `--cid-version=1`).
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import fs from 'node:fs'
import path from 'node:path'

const [root, version] = process.argv.slice(2)
function * walk (dir, rel) {
  const names = fs.readdirSync(dir)
  if (names.length === 0) yield { path: rel }
  for (const name of names) {
    const full = path.join(dir, name)
    const r = `${rel}/${name}`
    if (fs.statSync(full).isDirectory()) yield * walk(full, r)
    else yield { path: r, content: fs.readFileSync(full) }
  }
}
const options = version === '0'
  ? { profile: 'unixfs-v0-2015' }
  : { cidVersion: 1, rawLeaves: true, shardSplitStrategy: 'links-bytes', shardSplitThresholdBytes: 262144 }
let out
for await (const entry of importer(walk(root, 'root'), new MemoryBlockstore(), options)) {
  if (entry.path === 'root') out = entry.cid.toString()
}
console.log(out)
