"""The drills' view of a Patroni cluster that already runs (``--pgdr-patroni-url`` and
``--pgdr-patroni-dsn``), tried against a cluster this test starts itself: the members come from
``GET /cluster``, a switchover goes through the REST API with the login in the URL, a client
loses nothing across it, and the faults that need the member's host are skipped."""

from __future__ import annotations

import pytest

from pytest_pgdr import Writer, faults
from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.parsers import parse_dsn, parse_urls
from pytest_pgdr.drill.splitbrain import assert_single_writer
from pytest_pgdr.ha import cluster_manager
from pytest_pgdr.hosts.base import FaultUnsupported

pytestmark = pytest.mark.pgdr


def test_existing_cluster_switchover_outage_and_rpo_run_faults_skip(pgdr, pgdr_measure):
    started = cluster_manager("patroni", pgdr)
    try:
        started.start()
        api = started.patroni_nodes[0].rest
        if api.via is not None:
            pytest.skip(
                "the containers' REST APIs are reachable inside their network only; the"
                " existing-cluster path is tried on the local backend"
            )
        host_port = api.url.removeprefix("http://")
        urls = [f"http://{api.user}:{api.password}@{host_port}"]  # one member is enough
        dsn = f"user={pgdr.credentials.superuser} password={pgdr.credentials.password}"
        ha = cluster_manager("patroni", pgdr, existing=(urls, dsn))
        old = ha.start()
        assert sorted(n.name for n in ha.nodes) == ["patroni1", "patroni2", "patroni3"]
        assert old.name == started.leader().name and len(ha.wait_replicas(old)) == 2
        with Writer(lambda: ha.nodes, rate=50) as writer:
            writer.wait_for_acks(10)
            fault_at = writer.mark_fault()
            new = ha.switchover()
            writer.wait_for_acks(1, after=fault_at)
        assert new.name != old.name and assert_single_writer(ha.nodes) is new
        assert writer.lost_commits(new) == []
        pgdr_measure.record_outage(writer.outage(fault_at))
        for fault in (lambda: ha.kill(new), lambda: faults.freeze(new).check()):
            with pytest.raises(FaultUnsupported):
                fault()
        with pytest.raises(FaultUnsupported, match="needs access to the member's host"):
            ha.kill_manager(new)
        ha.close()
    finally:
        started.close()


@pytest.mark.parametrize("pgdr", [None])
def test_existing_cluster_options(pgdr):
    assert parse_urls("--pgdr-patroni-url", "none") == ()
    urls = parse_urls("--pgdr-patroni-url", "http://a:s3cr3t-pw@h1:8008, http://h2:8008")
    assert urls == ("http://a:s3cr3t-pw@h1:8008", "http://h2:8008")
    with pytest.raises(ConfigError, match="http://"):
        parse_urls("--pgdr-patroni-url", "h1:8008")
    assert parse_dsn("--pgdr-patroni-dsn", "user=x password='p w-123456'") is not None
    from pytest_pgdr.basics.errors import redact

    assert "s3cr3t-pw" not in redact("http://a:s3cr3t-pw@h1") and "p w-123456" not in redact(
        "password='p w-123456'"
    )
    with pytest.raises(ConfigError, match="cannot target an existing cluster"):
        cluster_manager("plain", pgdr, existing=(["http://h:1"], ""))
