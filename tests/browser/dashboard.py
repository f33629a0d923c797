"""The sale dashboard of infra/template.yaml, drawn from a local run.

CloudWatch draws the template's `SaleDashboard` from the functions' EMF
figures; locally the same figures are at `GET /metrics`. `Sampler` reads
them every second while the browser test runs, and `render` lays the
dashboard's own widgets out (its JSON, read from the template) with each
series drawn from those samples: counters as their increase a second,
gauges and latency quantiles as read. Series only the cloud has (API
Gateway's 5xx) and the alarms, which CloudWatch evaluates, are named, not
drawn.
"""
import html
import json
import re
import threading
import time
import urllib.request
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
COLOURS = ["#1a7f37", "#b8b8c0", "#d7261e", "#0969da", "#bf8700", "#8250df", "#57606a", "#cf222e"]
QUANTILES = {"p50": "0.5", "p90": "0.9", "p99": "0.99"}
SERIES = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')


def parse(text):
    """Prometheus text → {(name, (("label", "value"), …)): value}."""
    figures = {}
    for line in text.splitlines():
        match = SERIES.match(line)
        if not match:
            continue
        name, labels, value = match.groups()
        pairs = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels or "")))
        figures[(name, pairs)] = float(value)
    return figures


class Sampler(threading.Thread):
    """Reads `<base>/metrics` every second until `stop()`."""

    def __init__(self, base):
        super().__init__(daemon=True)
        self.url = f"{base}/metrics"
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2) as reply:
                    self.samples.append((time.time(), parse(reply.read().decode())))
            except OSError:
                pass
            self.done.wait(1)

    def stop(self):
        self.done.set()
        self.join()


def dashboard():
    """The widgets of the template's SaleDashboard (its `!Sub` body, with the stack's names as placeholders)."""
    text = TEMPLATE.read_text()
    block = text[text.index("DashboardBody: !Sub |"):].split("\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line.strip() and not line.startswith("        "):
            break
        lines.append(line)
    body = re.sub(r"\$\{([^}]+)\}", lambda m: m.group(1), "\n".join(lines))
    return json.loads(body)["widgets"]


def series_of(metric, previous, samples):
    """[(label, [value per sample], counted)] for one entry of a widget's `metrics` (`counted`: a
    counter's increase, whose sum is a total), or a note why it is not drawn."""
    if isinstance(metric[0], dict):
        search = re.search(r"\{FlashSale,([\w,]+)\} MetricName=\\?\"(\w+)\\?\"", metric[0]["expression"])
        dims, name = search.group(1).split(","), search.group(2)
        # The winning answer first, so it takes the first colour (green) as on the console's boards.
        won = ("CREATED", "CLAIMED")
        keys = sorted({key for _, figures in samples for key in figures if key[0] == name},
                      key=lambda key: (dict(key[1]).get("code") not in won, key))
        return [(" ".join(dict(key[1]).get(d, "") for d in dims), rates(key, samples), True) for key in keys]
    parts = [part for part in metric if not isinstance(part, dict)]
    # "...": CloudWatch's shorthand for the previous line's metric and dimensions.
    namespace, name, *rest = previous if parts == ["..."] else parts
    options = next((part for part in metric if isinstance(part, dict)), {})
    if namespace != "FlashSale":
        return f"{namespace} {name}: drawn by CloudWatch only"
    labels = dict(zip(rest[::2], rest[1::2]))
    stat = options.get("stat", "Sum")
    label = options.get("label", name)
    if stat in QUANTILES:
        labels["quantile"] = QUANTILES[stat]
        return [(label, levels((name, tuple(sorted(labels.items()))), samples), False)]
    key = (name, tuple(sorted(labels.items())))
    if stat == "Maximum":
        return [(label, levels(key, samples), False)]
    return [(label, rates(key, samples), True)]


def levels(key, samples):
    return [figures.get(key, 0.0) for _, figures in samples]


def rates(key, samples):
    values = levels(key, samples)
    return [0.0] + [max(0.0, b - a) for a, b in zip(values, values[1:])]


def chart(lines):
    width, height = 560, 170
    peak = max([1.0] + [max(values) for _, values, _ in lines])
    paths = []
    for index, (_, values, _) in enumerate(lines):
        step = width / max(1, len(values) - 1)
        points = " ".join(f"{i * step:.1f},{height - 8 - (v / peak) * (height - 16):.1f}" for i, v in enumerate(values))
        paths.append(f'<polyline fill="none" stroke-width="2" stroke="{COLOURS[index % len(COLOURS)]}" points="{points}"/>')
    axis = f'<text x="4" y="14" class="peak">{peak:g}</text>'
    return f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none">{axis}{"".join(paths)}</svg>'


def render(samples, browser, out_png):
    """Draws the dashboard from `samples` and screenshots it to `out_png`."""
    boxes = []
    for widget in dashboard():
        props = widget["properties"]
        style = f"grid-column:{widget['x'] + 1}/span {widget['width']};grid-row:{widget['y'] + 1}/span {widget['height']}"
        if widget["type"] == "alarm":
            names = "".join(f"<li>{html.escape(arn.split('.')[0])}</li>" for arn in props["alarms"])
            inner = f"<ul>{names}</ul><p class=note>CloudWatch evaluates the alarms; each notifies AlarmTopic.</p>"
        else:
            lines, notes, previous = [], [], []
            for metric in props["metrics"]:
                drawn = series_of(metric, previous, samples)
                if not isinstance(metric[0], dict) and metric[0] != "...":
                    previous = [part for part in metric if not isinstance(part, dict)]
                (notes.append(drawn) if isinstance(drawn, str) else lines.extend(drawn))
            legend = "".join(
                f'<span><i style="background:{COLOURS[i % len(COLOURS)]}"></i>{html.escape(label)}'
                f'{f" (total {sum(values):g})" if counted else ""}</span>'
                for i, (label, values, counted) in enumerate(lines))
            inner = chart(lines) + f"<div class=legend>{legend}</div>" + "".join(f"<p class=note>{html.escape(n)}</p>" for n in notes)
        boxes.append(f'<section style="{style}"><h2>{html.escape(props["title"])}</h2>{inner}</section>')
    seconds = round(samples[-1][0] - samples[0][0]) if len(samples) > 1 else 0
    page = f"""<!doctype html><meta charset=utf-8><style>
      body {{ font: 13px system-ui, sans-serif; margin: 16px; background: #f2f3f3; color: #16191f; }}
      header {{ font-size: 18px; font-weight: 600; margin-bottom: 4px; }}
      .sub {{ color: #5f6b7a; margin-bottom: 12px; }}
      main {{ display: grid; grid-template-columns: repeat(24, 1fr); grid-auto-rows: 42px; gap: 8px; }}
      section {{ background: #fff; border: 1px solid #d5dbdb; border-radius: 4px; padding: 8px 10px; overflow: hidden; }}
      h2 {{ font-size: 13px; margin: 0 0 4px; }}
      svg {{ width: 100%; height: 150px; border-bottom: 1px solid #d5dbdb; }}
      .peak {{ font-size: 11px; fill: #5f6b7a; }}
      .legend span {{ margin-right: 10px; white-space: nowrap; font-size: 12px; }}
      .legend i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }}
      .note {{ color: #5f6b7a; font-size: 12px; margin: 4px 0; }}
      </style><header>flashsale-sale</header>
      <div class=sub>The template's SaleDashboard, each series drawn from the local server's /metrics,
      read every second for the {seconds} s of the browser test (CloudWatch draws a point a minute).</div>
      <main>{''.join(boxes)}</main>"""
    page_ = browser.new_page(viewport={"width": 1400, "height": 900})
    page_.set_content(page)
    page_.screenshot(path=str(out_png), full_page=True)
    page_.close()
