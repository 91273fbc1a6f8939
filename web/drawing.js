// What the canvas draws under the nodes: the grid, the links (as the bezier curves litegraph draws),
// the link being dragged and the box-select rectangle; and which link passes under a point.

const GRID = 20;
const LINK_HIT = 6; // screen pixels from a link that still count as on it

/** Redraws the link canvas of a Canvas. */
export function drawCanvas(canvas) {
  const ctx = canvas.linkCanvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const { x, y, scale } = canvas.view;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.linkCanvas.width, canvas.linkCanvas.height);
  ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * x, dpr * y);
  drawGrid(ctx, canvas);
  for (const { a, b, colour, muted } of linkCurves(canvas)) {
    ctx.globalAlpha = muted ? 0.35 : 1;
    drawLink(ctx, a, b, colour);
  }
  ctx.globalAlpha = 1;
  const pending = canvas.pendingLink;
  if (pending?.point) {
    const anchor = pending.from ? canvas.views.get(pending.from.node).socketPosition("out", pending.from.slot)
      : canvas.views.get(pending.to.node).socketPosition("in", pending.to.input);
    ctx.setLineDash([6, 4]);
    if (pending.from) drawLink(ctx, anchor, pending.point, "#e5e7eb");
    else drawLink(ctx, pending.point, anchor, "#e5e7eb");
    ctx.setLineDash([]);
  }
  if (canvas.box) {
    const [x0, y0, x1, y1] = canvas.box;
    ctx.lineWidth = 1 / scale;
    ctx.strokeStyle = "#d9dbe1";
    ctx.fillStyle = "rgba(109, 140, 255, 0.12)";
    ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
}

/** Each drawn link: its ends in graph coordinates, colour, and the link it draws. */
function* linkCurves(canvas) {
  for (const link of canvas.graph.links()) {
    const from = canvas.views.get(link.from);
    const to = canvas.views.get(link.to);
    const a = from?.socketPosition("out", link.slot);
    const b = to?.socketPosition("in", link.input);
    if (!a || !b) continue;
    yield { a, b, link, colour: from.outputColour(link.slot), muted: from.node.mode !== 0 || to.node.mode !== 0 };
  }
}

/** The link whose curve passes within a few screen pixels of a graph point, with the point on it; or null. */
export function linkAt(canvas, [px, py]) {
  const reach = LINK_HIT / canvas.view.scale;
  for (const { a, b, link } of linkCurves(canvas)) {
    for (let i = 0; i <= 32; i++) {
      const [x, y] = bezierPoint(a, b, i / 32);
      if (Math.hypot(x - px, y - py) <= reach) return { link, point: [x, y] };
    }
  }
  return null;
}

function controlPoints([ax, ay], [bx, by]) {
  const bend = Math.max(40, Math.abs(bx - ax) * 0.5);
  return [[ax + bend, ay], [bx - bend, by]];
}

function bezierPoint(a, b, t) {
  const [c1, c2] = controlPoints(a, b);
  const u = 1 - t;
  return [0, 1].map((k) => u * u * u * a[k] + 3 * u * u * t * c1[k] + 3 * u * t * t * c2[k] + t * t * t * b[k]);
}

function drawLink(ctx, a, b, colour) {
  const [c1, c2] = controlPoints(a, b);
  ctx.beginPath();
  ctx.moveTo(...a);
  ctx.bezierCurveTo(...c1, ...c2, ...b);
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2.5;
  ctx.stroke();
}

function drawGrid(ctx, canvas) {
  const { viewport, view } = canvas;
  const rect = viewport.getBoundingClientRect();
  const [x0, y0] = canvas.toGraph(rect.left, rect.top);
  const x1 = x0 + viewport.clientWidth / view.scale;
  const y1 = y0 + viewport.clientHeight / view.scale;
  const step = view.scale < 0.5 ? GRID * 5 : GRID;
  ctx.lineWidth = 1 / view.scale;
  ctx.beginPath();
  for (let gx = Math.floor(x0 / step) * step; gx < x1; gx += step) {
    ctx.moveTo(gx, y0);
    ctx.lineTo(gx, y1);
  }
  for (let gy = Math.floor(y0 / step) * step; gy < y1; gy += step) {
    ctx.moveTo(x0, gy);
    ctx.lineTo(x1, gy);
  }
  ctx.strokeStyle = "rgba(255, 255, 255, 0.035)";
  ctx.stroke();
}
