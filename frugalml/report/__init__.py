"""Reports: deploy.json rendered as Markdown and HTML (deploy_md, deploy_html), benchmark
reports over Profile JSONs (bench, bench_html), and run-to-run comparison (compare, runs)."""
