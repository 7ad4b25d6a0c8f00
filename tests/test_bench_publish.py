"""make bench writes docs/performance.md and docs/reliability.md from the figures its run
printed: each figure with its goal and verdict, the goals missed listed, a benchmark that failed
named as not measured."""

from urelief.bench import publish


def test_documents_carry_the_figures_the_run_recorded(tmp_path):
    publish.reset()
    try:
        publish.begin("server")
        publish.figure("sqlite: ingest throughput", "8000 pkt/s", goal=">= 10000 pkt/s", met=False,
                       versus="the floor, same run")
        publish.figure("sqlite: ack latency p99", "3.1 ms", goal="<= 10 ms", met=True)
        publish.note("Profile: most of the time goes to the writer's pickling.")
        publish.begin("flash")
        publish.figure("unprotected window", "median 30 ms", doc=publish.RELIABILITY)
        publish.FAILED["gnss"] = "RuntimeError('no VM')"
        written = publish.write(tmp_path, command="make bench")
    finally:
        publish.reset()
    assert sorted(p.name for p in written) == ["performance.md", "reliability.md"]
    perf = (tmp_path / "performance.md").read_text()
    assert "| sqlite: ingest throughput | 8000 pkt/s | >= 10000 pkt/s | **missed** | the floor, same run |" in perf
    assert "| sqlite: ack latency p99 | 3.1 ms | <= 10 ms | met |" in perf
    assert "Profile: most of the time goes to the writer's pickling." in perf
    assert "- server: sqlite: ingest throughput: 8000 pkt/s against >= 10000 pkt/s" in perf
    assert "- gnss: failed (RuntimeError('no VM'))" in perf
    assert "Written by `make bench`" in perf and "CPU" in perf
    rel = (tmp_path / "reliability.md").read_text()
    assert "| unprotected window | median 30 ms |" in rel and "ingest" not in rel
    assert "None in this run." in rel
