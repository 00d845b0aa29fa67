// The 3D view: a textured mesh (GLB) or 3D landmarks as points, turned with the mouse (OrbitControls).
// three.js is vendored into the package (static/vendor/, built by `make vendor`); nothing comes from a CDN.
import * as THREE from "./vendor/three.module.js";
import { OrbitControls } from "./vendor/addons/controls/OrbitControls.js";
import { GLTFLoader } from "./vendor/addons/loaders/GLTFLoader.js";

const COLOURS = [0xff40a0, 0x40c8ff, 0xffc828, 0x78ff78, 0xc878ff, 0xff7838];

export class Viewer3D {
  constructor(container) {
    this.container = container;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    container.append(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x202327);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x444444, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 1.5);
    sun.position.set(2, 3, 4);
    this.scene.add(sun);
    this.camera = new THREE.PerspectiveCamera(35, 1, 0.01, 100);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener("change", () => this.render());
    this.content = null;
    this.summary = { kind: null, points: 0, vertices: 0 };
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  resize() {
    const width = Math.max(1, this.container.clientWidth);
    const height = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  render() {
    this.renderer.render(this.scene, this.camera);
  }

  replace(object) {
    if (this.content) {
      this.scene.remove(this.content);
      this.content.traverse((node) => {
        if (node.geometry) node.geometry.dispose();
        if (node.material) [].concat(node.material).forEach((m) => { if (m.map) m.map.dispose(); m.dispose(); });
      });
    }
    this.content = object;
    this.scene.add(object);
    // Frame the object: centre it and put the camera at a distance that shows its bounding sphere.
    const sphere = new THREE.Box3().setFromObject(object).getBoundingSphere(new THREE.Sphere());
    const radius = sphere.radius || 1;
    const distance = radius / Math.sin(THREE.MathUtils.degToRad(this.camera.fov / 2)) * 1.3;
    this.controls.target.copy(sphere.center);
    this.camera.position.copy(sphere.center).add(new THREE.Vector3(0, radius * 0.3, distance));
    this.camera.near = distance / 100;
    this.camera.far = distance * 10;
    this.camera.updateProjectionMatrix();
    this.controls.update();
    this.render();
  }

  async showMesh(buffer) {
    const gltf = await new GLTFLoader().parseAsync(buffer, "");
    let vertices = 0;
    gltf.scene.traverse((node) => { if (node.isMesh) vertices += node.geometry.attributes.position.count; });
    this.summary = { kind: "mesh", points: 0, vertices };
    this.replace(gltf.scene);
  }

  // Points are in image pixels (x right, y down) with z larger = closer; three.js has y up and the camera
  // looking down -z, so y is flipped and z kept: the view starts as the photo was taken.
  showPoints(instances) {
    const group = new THREE.Group();
    let count = 0;
    instances.forEach((instance, n) => {
      const positions = [];
      for (const point of instance.points) {
        if (point) positions.push(point[0], -point[1], point[2]);
      }
      count += positions.length / 3;
      const geometry = new THREE.BufferGeometry();
      geometry.setAttribute("position", new THREE.Float32BufferAttribute(positions, 3));
      geometry.computeBoundingSphere();
      const size = Math.max(geometry.boundingSphere ? geometry.boundingSphere.radius / 12 : 1, 1e-3);
      group.add(new THREE.Points(geometry, new THREE.PointsMaterial({ color: COLOURS[n % COLOURS.length], size })));
    });
    this.summary = { kind: "landmarks3d", points: count, vertices: 0 };
    this.replace(group);
  }
}
