"""What one page fault costs here: a write to each of 10,000 pages of a buffer
this process owns, then after a fork to 10,000 pages a live child still shares
(the kernel copies each), then, once the child is gone, to 10,000 more that were
shared (the kernel only makes each writable again).

    python docs/results/session30_fault_cost.py
"""
import os
import signal
import time

PAGES, PAGE = 10_000, 4096


def write_pages(buffer: bytearray, first: int) -> float:
    """Microseconds a page to write one byte into each of PAGES pages."""
    start = time.perf_counter()
    for page in range(first, first + PAGES):
        buffer[page * PAGE] = 1
    return (time.perf_counter() - start) / PAGES * 1e6


buffer = bytearray(PAGE * (3 * PAGES + 1))
write_pages(buffer, 0)
write_pages(buffer, PAGES)
write_pages(buffer, 2 * PAGES)
owned = write_pages(buffer, 0)
for _ in range(3):
    child = os.fork()
    if child == 0:
        time.sleep(100)
        os._exit(0)
    copied = write_pages(buffer, PAGES)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    unshared = write_pages(buffer, 2 * PAGES)
    print(f"owned {owned:.2f} us a page, shared with a live child {copied:.2f}, "
          f"shared before (child gone) {unshared:.2f}")
