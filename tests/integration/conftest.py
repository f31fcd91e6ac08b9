"""Fixtures for the integration tests: host mode (`zongji run`) on loopback against real SIP
peers. The helpers themselves are in sipharness.py; every process a fixture starts, it stops
at teardown (SIGINT, then SIGKILL after 5 s), whatever the test did.

    free_udp_port()          a function: a UDP port on 127.0.0.1 nobody uses now
    workdir                  a folder for this test's logs, CSVs and configs
    example_site             `zongji init` in tmp_path, secrets read from its staff.csv
    hostmode(site, port=None)        starts `zongji run SITE --sip 127.0.0.1:PORT --state DIR`
    switchboard(site, port=None)     the same, once as host mode and once as the virtual device
                                     (`zongji device run`, the firmware on the MicroPython unix
                                     port): tests using it run against both
    sipp_server(...)         a SIPp UAS in the background (SippServer.start), stopped at teardown
    provider(...)            Kamailio as the trunk provider (Provider.start), stopped at teardown
    baresip(...)             a headless baresip (Baresip.start), stopped at teardown

When a test fails, the logs of every process it started are in `workdir` (the tmp_path pytest
prints) and the tail of each is printed with the failure.
"""

import signal

import pytest
from sipharness import Baresip, HostMode, Provider, SippServer, Site, VirtualDevice
from sipharness import free_udp_port as _free_udp_port


@pytest.fixture
def free_udp_port():
    """The port allocator: free_udp_port(span=1, tcp=False) -> int."""
    return _free_udp_port


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def example_site(tmp_path):
    """The example branch (extensions 200-211, groups 600/601), fresh secrets; its trunk points
    at a free loopback port with nothing behind it unless the test starts a provider there.
    Use .secret("201"), .add_extensions(3000, 50), .set_trunk(port=...)."""
    return Site.create(tmp_path / "site")


class _Started:
    """Processes a test started through the fixtures, stopped in reverse order at teardown."""

    def __init__(self, request):
        self.procs = []
        self.request = request

    def add(self, proc, sig=signal.SIGINT):
        self.procs.append((proc, sig))
        return proc

    def close(self):
        failed = getattr(self.request.node, "rep_call", None)
        for proc, sig in reversed(self.procs):
            proc.stop(sig=sig)
        if failed is not None and failed.failed:
            for proc, _ in self.procs:
                print("\n----- %s (%s) -----\n%s" % (proc.name, proc.log_path, proc.tail(60)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


@pytest.fixture
def started(request):
    s = _Started(request)
    yield s
    s.close()


@pytest.fixture
def hostmode(started, workdir, tmp_path):
    """start(site, port=None) -> HostMode: `zongji run` on 127.0.0.1:port, ready (its
    "listening" line seen, at most 20 s). Stopped with SIGINT at teardown (SIGKILL after 5 s)."""

    def start(site, port=None, state=None):
        port = port or _free_udp_port()
        state = state or (tmp_path / ("state-%d" % port))
        return started.add(HostMode.start(site, port, state, workdir))

    return start


@pytest.fixture(params=["hostmode", "vdevice"])
def switchboard(request, started, workdir, tmp_path):
    """start(site, port=None) -> HostMode or VirtualDevice, listening; the same interface
    (addr, wait_for, registered(), calls(), problems() ...). Parametrized: host mode, then the
    virtual device (the firmware on the MicroPython unix port, an ESP32-WROVER's heap)."""

    def start(site, port=None):
        port = port or _free_udp_port()
        if request.param == "hostmode":
            return started.add(HostMode.start(site, port, tmp_path / ("state-%d" % port), workdir))
        return started.add(VirtualDevice.start(site, port, tmp_path / ("flash-%d" % port), workdir))

    return start


@pytest.fixture
def sipp_server(started, workdir):
    """start(scenario, name, calls, local_port, **sipp options) -> SippServer (a UAS)."""

    def start(scenario, name, calls, local_port, **kw):
        return started.add(SippServer.start(scenario, workdir, name, calls, local_port, **kw))

    return start


@pytest.fixture
def provider(started, workdir):
    """start(port, user, password, far_end_port) -> Provider (Kamailio), stopped with SIGTERM."""

    def start(port, user, password, far_end_port):
        return started.add(Provider.start(port, workdir, user, password, far_end_port), sig=signal.SIGTERM)

    return start


@pytest.fixture
def baresip(started, workdir):
    """start(name, user, password, server, listen_port=None, register=True, tone=440, record=False) -> Baresip."""

    def start(name, user, password, server, listen_port=None, register=True, **kw):
        port = listen_port or _free_udp_port(span=2, tcp=True)
        return started.add(Baresip.start(workdir, name, user, password, server, port, register=register, **kw))

    return start
