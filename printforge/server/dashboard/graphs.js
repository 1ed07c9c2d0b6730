// Drawing for the dashboard: temperature graphs (SVG) and a G-code layer (canvas). Plain
// functions of data, no network and no state of their own.
"use strict";

(() => {
  const W = 240, H = 64, PAD = 2;
  // hotend and bed, actual solid and target dashed, in the dashboard's colours
  const SERIES = [
    ["hotend", "actual", "#f28c28", ""], ["hotend", "target", "#f28c28", "3 3"],
    ["bed", "actual", "#58a6ff", ""], ["bed", "target", "#58a6ff", "3 3"],
  ];

  // samples: [{t (ms), hotend: {actual, target}, bed: {…}}], oldest first.
  function tempGraph(samples, id) {
    if (!samples || samples.length < 2) {
      return `<svg class="tgraph" data-testid="temps-${id}" data-points="${samples ? samples.length : 0}" viewBox="0 0 ${W} ${H}"><text x="4" y="${H / 2}" class="tlabel">collecting temperatures…</text></svg>`;
    }
    const t0 = samples[0].t, t1 = samples[samples.length - 1].t;
    let top = 50;
    for (const s of samples) {
      for (const [h, k] of SERIES) top = Math.max(top, (s[h] && s[h][k]) || 0);
    }
    top = Math.ceil(top / 50) * 50;
    const x = (t) => PAD + ((t - t0) / Math.max(t1 - t0, 1)) * (W - 2 * PAD);
    const y = (v) => H - PAD - (v / top) * (H - 2 * PAD);
    const lines = SERIES.map(([h, k, colour, dash]) => {
      const pts = samples.filter((s) => s[h]).map((s) => `${x(s.t).toFixed(1)},${y(s[h][k] || 0).toFixed(1)}`);
      return pts.length ? `<polyline data-series="${h}-${k}" fill="none" stroke="${colour}" stroke-width="1.5"${dash ? ` stroke-dasharray="${dash}"` : ""} points="${pts.join(" ")}"/>` : "";
    }).join("");
    const minutes = Math.max(1, Math.round((t1 - t0) / 60000));
    return `<svg class="tgraph" data-testid="temps-${id}" data-points="${samples.length}" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">
      <line x1="0" x2="${W}" y1="${y(top / 2)}" y2="${y(top / 2)}" class="tgrid"/>${lines}
      <text x="4" y="10" class="tlabel">${top}°</text><text x="${W - 4}" y="${H - 4}" text-anchor="end" class="tlabel">last ${minutes} min</text></svg>`;
  }

  // data: job.layer's answer. Draws the layer's extruding moves, one scale for all layers.
  function drawLayer(canvas, data) {
    const ctx = canvas.getContext("2d");
    const size = canvas.width;
    ctx.fillStyle = "#0b0f13";
    ctx.fillRect(0, 0, size, size);
    const [x0, y0, x1, y1] = data.bounds;
    const span = Math.max(x1 - x0, y1 - y0, 1e-3);
    const scale = (size - 24) / span;
    const ox = (size - (x1 - x0) * scale) / 2, oy = (size - (y1 - y0) * scale) / 2;
    const s = data.segments;
    ctx.strokeStyle = "#f28c28";
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    for (let i = 0; i + 3 < s.length; i += 4) {
      ctx.moveTo(ox + (s[i] - x0) * scale, size - oy - (s[i + 1] - y0) * scale);
      ctx.lineTo(ox + (s[i + 2] - x0) * scale, size - oy - (s[i + 3] - y0) * scale);
    }
    ctx.stroke();
    canvas.dataset.drawn = String(data.shown);
  }

  window.printforgeGraphs = { tempGraph, drawLayer };
})();
