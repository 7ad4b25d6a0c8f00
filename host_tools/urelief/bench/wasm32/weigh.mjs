// Live heap each module's import adds on the 32-bit MicroPython (WebAssembly port):
//   node weigh.mjs TREE '["mod", ...]'  ->  {"mod": bytes | "error text", ...}
// TREE is copied into the port's in-memory filesystem and is its whole sys.path. The port
// collects garbage only between calls from JS, so every step is a call of its own.
import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript/micropython.mjs";

const [tree, modsJson] = process.argv.slice(2);
const lines = [];
const mp = await loadMicroPython({ heapsize: 4 * 1024 * 1024, stdout: (l) => lines.push(l), linebuffer: true });

function copy(src, dst) {
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, e.name), d = dst + "/" + e.name;
    if (e.isDirectory()) { mp.FS.mkdir(d); copy(s, d); } else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
mp.FS.mkdir("/fw");
copy(tree, "/fw");
mp.runPython("import sys, gc\nsys.path[:] = ['/fw']");
const out = {};
for (const m of JSON.parse(modsJson)) {
  mp.runPython("gc.collect()");
  mp.runPython("_before = gc.mem_alloc()");
  try {
    mp.runPython(`__import__(${JSON.stringify(m)})`);
  } catch (e) {
    out[m] = String(e).trim().split("\n").pop();
    continue;
  }
  mp.runPython("gc.collect()");
  mp.runPython("print(gc.mem_alloc() - _before)");
  out[m] = parseInt(lines[lines.length - 1], 10);
}
console.log(JSON.stringify(out));
