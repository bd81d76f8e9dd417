"""Peak resident-memory growth of a block of code, read from ``/proc`` (Linux only)."""


def _status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


class PeakGrowth:
    """``with PeakGrowth() as peak: ...`` then ``peak.mb``: the resident set's high-water
    mark during the block minus the resident set at its start, in MB.

    The high-water mark (``VmHWM``) is reset through ``/proc/self/clear_refs`` on entry,
    so the number counts every allocation the block makes (NumPy, BLAS buffers, a
    solver's own copies) beyond what was already in memory.
    """

    def __enter__(self):
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        self._before_kb = _status_kb("VmRSS")
        return self

    def __exit__(self, *exc_info):
        self.mb = (_status_kb("VmHWM") - self._before_kb) / 1024
