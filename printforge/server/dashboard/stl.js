// A small STL viewer on a 2-D canvas: parse (binary or ASCII), view from above at an angle,
// paint triangles back to front with flat shading. Enough to recognise a part; no WebGL needed.
"use strict";

function parseStl(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength >= 84) {
    const n = view.getUint32(80, true);
    if (84 + n * 50 === buffer.byteLength) {
      const tris = new Float32Array(n * 9);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < 9; k++) tris[i * 9 + k] = view.getFloat32(84 + i * 50 + 12 + k * 4, true);
      }
      return tris;
    }
  }
  const text = new TextDecoder().decode(buffer);
  const nums = [];
  const re = /vertex\s+(\S+)\s+(\S+)\s+(\S+)/g;
  let m;
  while ((m = re.exec(text)) !== null) nums.push(+m[1], +m[2], +m[3]);
  return new Float32Array(nums);
}

function drawStl(canvas, tris) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const n = tris.length / 9;
  if (!n) return;
  const min = [Infinity, Infinity, Infinity], max = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < tris.length; i += 3) {
    for (let k = 0; k < 3; k++) { min[k] = Math.min(min[k], tris[i + k]); max[k] = Math.max(max[k], tris[i + k]); }
  }
  const c = [(min[0] + max[0]) / 2, (min[1] + max[1]) / 2, (min[2] + max[2]) / 2];
  const yaw = -Math.PI / 4, pitch = Math.PI / 5.2;
  const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
  const proj = (x, y, z) => {
    x -= c[0]; y -= c[1]; z -= c[2];
    const x1 = x * cy - y * sy, y1 = x * sy + y * cy;
    return [x1, -(z * cp - y1 * sp), y1 * cp + z * sp];
  };
  const pts = new Float32Array(n * 9);
  let ext = 0;
  for (let i = 0; i < n * 3; i++) {
    const p = proj(tris[i * 3], tris[i * 3 + 1], tris[i * 3 + 2]);
    pts[i * 3] = p[0]; pts[i * 3 + 1] = p[1]; pts[i * 3 + 2] = p[2];
    ext = Math.max(ext, Math.abs(p[0]), Math.abs(p[1]));
  }
  const scale = (Math.min(w, h) * 0.42) / (ext || 1);
  const order = Array.from({ length: n }, (_, i) => i);
  const depth = (i) => pts[i * 9 + 2] + pts[i * 9 + 5] + pts[i * 9 + 8];
  order.sort((a, b) => depth(a) - depth(b));
  const light = [0.35, -0.55, 0.75];
  for (const i of order) {
    const o = i * 9;
    const ax = pts[o + 3] - pts[o], ay = pts[o + 4] - pts[o + 1], az = pts[o + 5] - pts[o + 2];
    const bx = pts[o + 6] - pts[o], by = pts[o + 7] - pts[o + 1], bz = pts[o + 8] - pts[o + 2];
    let nx = ay * bz - az * by, ny = az * bx - ax * bz, nz = ax * by - ay * bx;
    const len = Math.hypot(nx, ny, nz) || 1;
    nx /= len; ny /= len; nz /= len;
    const lum = 0.35 + 0.65 * Math.abs(nx * light[0] + ny * light[1] + nz * light[2]);
    const r = Math.round(242 * lum), g = Math.round(140 * lum), b = Math.round(40 * lum);
    ctx.fillStyle = ctx.strokeStyle = `rgb(${r},${g},${b})`;
    ctx.beginPath();
    ctx.moveTo(w / 2 + pts[o] * scale, h / 2 + pts[o + 1] * scale);
    ctx.lineTo(w / 2 + pts[o + 3] * scale, h / 2 + pts[o + 4] * scale);
    ctx.lineTo(w / 2 + pts[o + 6] * scale, h / 2 + pts[o + 7] * scale);
    ctx.closePath();
    ctx.fill();
    ctx.lineWidth = 0.5;
    ctx.stroke();
  }
}

window.printforgeStl = { parseStl, drawStl };
