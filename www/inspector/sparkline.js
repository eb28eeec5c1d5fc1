// The tokens/s sparkline (#sparkline, #spark-value): the speed readings of
// the text on the page.

const $ = (id) => document.getElementById(id);

const SPARK_POINTS = 120;

export function createSparkline() {
  const canvas = $("sparkline");
  const value = $("spark-value");
  let speeds = [];

  function draw() {
    const ctx = canvas.getContext("2d");
    const { width: w, height: h } = canvas;
    ctx.clearRect(0, 0, w, h);
    const data = speeds;
    if (!data.length) return;
    const max = Math.max(...data) * 1.1 || 1;
    ctx.strokeStyle = "#2f5fd0";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    data.forEach((v, i) => {
      const x = data.length === 1 ? w : (i / (data.length - 1)) * w;
      const y = h - 2 - (v / max) * (h - 4);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    if (data.length === 1) ctx.lineTo(0, h - 2 - (data[0] / max) * (h - 4)); // one reading: a level line
    ctx.stroke();
    const last = data[data.length - 1];
    value.textContent = `${last.toFixed(1)} tokens/s now · peak ${Math.max(...data).toFixed(1)}`;
    canvas.setAttribute("aria-label", `tokens per second over the last ${data.length} readings; now ${last.toFixed(1)}`);
  }

  return {
    /** A new text: no readings yet (what is drawn stays until the next one). */
    reset: () => (speeds = []),
    /** One more reading; drawn when `visible`. */
    push(tokPerSec, visible) {
      speeds.push(tokPerSec);
      if (speeds.length > SPARK_POINTS) speeds.shift();
      if (visible) draw();
    },
  };
}
