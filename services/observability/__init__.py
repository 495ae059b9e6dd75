"""Monitoring as code: the SLOs (`slo`), the Prometheus rules that watch them and their causes
(`rules`), and the Grafana dashboards (`dashboards`), generated into the Helm chart's files by
`python -m services.observability` (`make proto`; `make test` fails when they are stale).

Why generated from Python rather than written by hand: every SLO has the same fourteen recording
rules and two burn-rate alerts (the Google SRE workbook's multiwindow, multi-burn-rate method),
and the dashboards show the same objectives; one table (`slo.SLOS`) feeds the rules, the
dashboards and the table of docs/slo.md, so they cannot drift apart.
"""
