// Reference CIDs of a folder with symlinks, as `ipfs add -r` stores it, from the npm UnixFS
// and dag-pb encoders (independent of our code). usage:
//   node symlink_tree.mjs <folder> <0|1> <hidden: 1|0>
// (lives beside the test node's node_modules: ipfs-unixfs-importer 12, ipfs-unixfs 9,
// @ipld/dag-pb 4). Files go through the js importer (v0: dag-pb leaves; v1: raw leaves, as
// Kubo's --cid-version=1); a symlink is a UnixFS `symlink` node holding its target text; a
// folder is a basic UnixFS directory, links sorted by name bytes, Tsize = the child's whole
// DAG. Nothing is followed. The symlink's UnixFS Data is encoded with ipfs-unixfs's own
// protobuf codec as Kubo's `unixfs.SymlinkData` writes it (Type and Data, no filesize):
// `new UnixFS({type: 'symlink'}).marshal()` in ipfs-unixfs 9 adds a filesize, so js-ipfs's
// symlink CIDs differ from Kubo's. The same script reproduces Kubo 0.22's CIDv0 vectors in
// tests/test_cid_symlinks.py, which is what makes its CIDv1 answer worth trusting.
import { importer } from 'ipfs-unixfs-importer'
import { UnixFS } from 'ipfs-unixfs'
import { fileURLToPath } from 'node:url'
import * as dagPB from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { MemoryBlockstore } from 'blockstore-core/memory'
import fs from 'node:fs'
import path from 'node:path'

// The protobuf codec ipfs-unixfs uses, from its own source (not in its package exports).
const unixfsMain = fileURLToPath(import.meta.resolve('ipfs-unixfs'))
const { Data: PBData } = await import(path.join(path.dirname(unixfsMain), 'unixfs.js'))

const [root, versionArg, hiddenArg] = process.argv.slice(2)
const version = Number(versionArg)
const hidden = hiddenArg !== '0'
const blocks = new MemoryBlockstore()
const fileOptions = version === 0
  ? { cidVersion: 0, rawLeaves: false, reduceSingleLeafToSelf: true }
  : { cidVersion: 1, rawLeaves: true, reduceSingleLeafToSelf: true }

async function dagSize (cid) {
  const bytes = await blocks.get(cid)
  if (cid.code !== dagPB.code) return bytes.length
  return dagPB.decode(bytes).Links.reduce((total, link) => total + link.Tsize, bytes.length)
}

async function pbNode (data, links) {
  const bytes = dagPB.encode(dagPB.prepare({ Data: data, Links: links }))
  const cid = CID.create(version, dagPB.code, await sha256.digest(bytes))
  await blocks.put(cid, bytes)
  return { cid, size: await dagSize(cid) }
}

async function add (full) {
  const stat = fs.lstatSync(full)
  if (stat.isSymbolicLink()) {
    const target = new TextEncoder().encode(fs.readlinkSync(full))
    return pbNode(PBData.encode({ Type: PBData.DataType.Symlink, Data: target }).finish(), [])
  }
  if (stat.isDirectory()) {
    const names = fs.readdirSync(full).filter((n) => hidden || !n.startsWith('.'))
    const entries = names.map((n) => [Buffer.from(n, 'utf8'), n]).sort((a, b) => Buffer.compare(a[0], b[0]))
    const links = []
    for (const [, name] of entries) {
      const child = await add(path.join(full, name))
      links.push({ Name: name, Hash: child.cid, Tsize: child.size })
    }
    return pbNode(new UnixFS({ type: 'directory' }).marshal(), links)
  }
  let last
  for await (const entry of importer([{ content: fs.readFileSync(full) }], blocks, fileOptions)) last = entry
  return { cid: last.cid, size: await dagSize(last.cid) }
}

console.log((await add(root)).cid.toString())
