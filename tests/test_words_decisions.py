"""The decisions issue 24 put in core, without Qt: Auto's port, folded log lines, other clients' speeds,
which controls apply, what Tune found and what accepting it changes.

The window's tests (test_window_reads_right.py, test_window_acts.py) check that these reach the screen.
"""

from __future__ import annotations

import socket

from llama_launcher.core.host import network
from llama_launcher.core.server.log_repeats import RepeatFolder, line_key


def test_auto_keeps_the_last_port_while_it_is_free_and_moves_to_a_neighbour_when_not() -> None:
    last = network.free_port()
    assert network.auto_port(last) == network.AutoPort(last)
    assert network.auto_port(last).note() == ""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", last))
        holder.listen(1)
        moved = network.auto_port(last)
        assert moved.port != last and moved.port > last and moved.moved_from == last
        assert moved.note().startswith(f"Auto moved to port {moved.port}: port {last}, which it used last time")
    fresh = network.auto_port(None)
    assert fresh.moved_from is None and network.port_is_free(fresh.port)


def test_repeats_fold_across_batches_and_count_every_line() -> None:
    folder = RepeatFolder()
    first = folder.add(["0.01.000.001 I srv  update_slots: all slots are idle",
                        "0.02.000.001 I srv  update_slots: all slots are idle"])
    assert [(e.text, e.times) for e in first.entries] == [("0.01.000.001 I srv  update_slots: all slots are idle", 2)]
    assert first.lines == 2  # at the time it was returned (its entry may grow with later lines)
    second = folder.add(["0.03.000.001 I srv  update_slots: all slots are idle", "0.04.000.000 I other line",
                         "0.05.000.000 I other line"])
    assert second.more == 1 and [(e.text, e.times) for e in second.entries] == [("0.04.000.000 I other line", 2)]
    assert second.lines == 3 and folder.folded == 3
    assert first.entries[0].shown().endswith("all slots are idle  … 3 times in a row")  # grew in the later batch
    folder.break_run()  # lines were dropped between: the next one starts its own entry
    assert folder.add(["0.06.000.000 I other line"]).entries[0].times == 1


def test_only_the_timestamp_is_ignored() -> None:
    assert line_key("0.27.343.759 I srv  update_slots: all slots are idle") == "I srv  update_slots: all slots are idle"
    assert line_key("line 7 srv update_slots") == "line 7 srv update_slots"  # no timestamp: the line itself
    assert line_key("0.27.343.759 W srv  x") != line_key("0.27.343.759 I srv  x")  # the level counts
