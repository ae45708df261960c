"""The customer value report: one self-contained HTML page of charts, and a PNG of each, written
from the published warehouse opened read-only (`make report`, and a step of `make build`).

- :mod:`cvm.report.queries`: one function per chart that reads the marts and says what the chart
  shows in one sentence, or why it cannot be drawn (no surveys, fit skipped, ...);
- :mod:`cvm.report.charts`: one function per chart that draws that data with Altair (Vega-Lite);
- :mod:`cvm.report.page`: the list of charts, the HTML page with Vega inlined, the PNGs.

Altair with vl-convert: declarative Vega-Lite specs, PNGs rendered without a browser, and the
Vega JavaScript bundled from the same wheel, so the page needs no network.
"""
