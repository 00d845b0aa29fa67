// Copies the three.js files the web app's 3D viewer needs from node_modules (installed by `npm ci` from
// package-lock.json) into the Python package, so the page never loads anything from a CDN.
// The add-ons import the bare name 'three'; it is rewritten to a relative path because the page's
// Content-Security-Policy allows no inline script, so no import map.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const three = join(here, 'node_modules', 'three');
const out = join(here, '..', 'src', 'shapekit', 'serve', 'static', 'vendor');

const core = { 'build/three.module.js': 'three.module.js', 'build/three.core.js': 'three.core.js', 'LICENSE': 'LICENSE-three.txt' };
const addons = ['controls/OrbitControls.js', 'loaders/GLTFLoader.js', 'utils/BufferGeometryUtils.js', 'utils/SkeletonUtils.js'];

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const [source, target] of Object.entries(core)) copyFileSync(join(three, source), join(out, target));
for (const name of addons) {
  const target = join(out, 'addons', name);
  mkdirSync(dirname(target), { recursive: true });
  let module = relative(dirname(target), join(out, 'three.module.js')).split('\\').join('/');
  if (!module.startsWith('.')) module = `./${module}`;
  const text = readFileSync(join(three, 'examples', 'jsm', name), 'utf8');
  const rewritten = text.replace(/from\s+['"]three['"]/g, `from '${module}'`);
  if (rewritten === text) throw new Error(`${name}: expected an import from 'three'`);
  writeFileSync(target, rewritten);
}
const version = JSON.parse(readFileSync(join(three, 'package.json'), 'utf8')).version;
writeFileSync(join(out, 'VERSION'), `three ${version}\n`);
console.log(`three.js ${version} vendored into ${out}`);
