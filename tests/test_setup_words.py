"""The Launch setup tab as a new user met it at 1280×820 (the walk's findings), and the words it says.

A combo's item says only the mode ("Auto (off)"), the reason on a wrapped line under it; every greyed
group (the ngram types' knobs, the drafters' knobs, the draft length) says why beside it; the command
preview never shows half a row; the reasons speak to a person ("runs on the CPU", not "CPU/Mac branch").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QComboBox, QLabel, QStyle, QStyleOptionComboBox

from llama_launcher.core.plan.controls import drafter_knobs, launch_controls
from llama_launcher.core.plan.spec_flags import spec_type_reason
from llama_launcher.core.plan.speculative import Availability, SpeculativeDecision
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.core.speculative.methods import BY_ID, SpecMode, SpecSource
from llama_launcher.ui.launch.speculative_box import SpeculativeBox
from llama_launcher.ui.main_window import MainWindow

from fake_server import make_fake_server
from gguf_factory import write_model
from window_helpers import WAIT, open_window

YES, NO = Availability(True, ""), Availability(False, "the model has no MTP layers")


# --- core: the rules and the words ---------------------------------------------------------------------
def test_the_drafters_knobs_apply_only_while_a_model_based_drafter_runs() -> None:
    available = {"mtp": YES, "draft": Availability(False, "no smaller model"), "ngram-mod": YES}
    assert drafter_knobs(None, available) == drafter_knobs(None, {})  # nothing known yet: greyed, no words
    assert drafter_knobs(SpeculativeDecision(methods=["mtp", "ngram-mod"]), available).ok
    assert drafter_knobs(SpeculativeDecision(methods=["draft"]), available).ok
    off = drafter_knobs(SpeculativeDecision(methods=["ngram-mod"]), available)
    assert not off.ok and off.why == ("these tune MTP, a head or a draft model; none runs now "
                                      "(set MTP to On to use one)")
    none = drafter_knobs(SpeculativeDecision(methods=["ngram-mod"]), {"mtp": NO, "ngram-mod": YES})
    assert not none.ok and none.why == "these tune MTP, a head or a draft model, and none can run for this model here"
    user = drafter_knobs(SpeculativeDecision(source=SpecSource.USER, methods=["ngram-mod"]), available)
    assert not user.ok and "your extra arguments choose the speculative types" in user.why
    # the whole answer carries it, and the newer ngram types' knobs say why without repeating their switch
    spec = SpeculativeDecision(methods=["ngram-mod"], auto_off={"ngram-simple": "Auto uses it only when measured"})
    controls = launch_controls(None, spec, ModelSettings(), {**available, "ngram-simple": YES}, None)
    assert controls.drafter_knobs == off
    assert controls.method_knobs["ngram-simple"].why == "ngram-simple does not run now, so its knobs do not apply"
    assert "Auto uses it only when measured" in controls.method_knobs["ngram-mod"].why or controls.method_knobs["ngram-mod"].ok


def test_the_spec_type_reason_speaks_to_a_person() -> None:
    one = SpeculativeDecision(methods=["ngram-mod"], types=["ngram-mod"], summary="ngram-mod")
    assert spec_type_reason(one, gpu=False) == "speculative decoding: ngram-mod (the default when the model runs on the CPU)"
    assert spec_type_reason(one, gpu=False, apple=True).endswith("(the default when the model runs on the Apple GPU)")
    two = SpeculativeDecision(methods=["mtp", "ngram-mod"], types=["draft-mtp", "ngram-mod"], summary="MTP + ngram-mod",
                              source=SpecSource.MEASURED)
    assert spec_type_reason(two, gpu=True) == ("speculative decoding: MTP + ngram-mod (measured on this machine; "
                                               "several types go in one --spec-type, separated by commas)")
    gpu = SpeculativeDecision(methods=["mtp"], types=["draft-mtp"], summary="MTP")
    assert spec_type_reason(gpu, gpu=True) == ("speculative decoding: MTP (the default when the model runs on a GPU: "
                                               "a model-based drafter alone)")
    for words in (spec_type_reason(s, g) for s in (one, two, gpu) for g in (True, False)):
        assert "branch" not in words and "comma-chained" not in words


# --- the window at its default size ------------------------------------------------------------------------
@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:
    folder = tmp_path / "models"
    write_model(folder / "gemma-3-270m-q4_k_m.gguf", arch="llama", name="Gemma 3 270m")
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    w.resize(1280, 820)
    w.launch_panel.advanced.toggle.setChecked(True)
    qtbot.waitUntil(lambda: w.launch_panel.preview.tree.topLevelItemCount() > 0, timeout=WAIT)
    qtbot.wait(50)
    return w


def text_width(combo: QComboBox) -> int:
    """The width a combo has for its current text (its edit field, less the arrow and the frame)."""
    opt = QStyleOptionComboBox()
    opt.initFrom(combo)
    opt.frame = True
    opt.editable = combo.isEditable()
    opt.currentText = combo.currentText()
    field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                         QStyle.SubControl.SC_ComboBoxEditField, combo)
    return field.width()


def shown_whole(label: QLabel, root) -> bool:
    """Visible, and as tall as its wrapped text at its width (nothing cut)."""
    if not label.isVisibleTo(root) or not label.text():
        return False
    need = label.fontMetrics().boundingRect(QRect(0, 0, label.width(), 1 << 20), Qt.TextFlag.TextWordWrap,
                                            label.text()).height()
    return label.height() >= need


def speculative_combos(w: MainWindow) -> dict[str, QComboBox]:
    p = w.launch_panel
    combos = {mid: c for mid, c in p.speculative.mode.items() if c.isVisibleTo(p)}
    return {**combos, "draft": p.speculative.draft_model, **p.advanced.mode}


def test_every_speculative_combo_fits_its_text_and_the_reason_is_under_it(qtbot, window: MainWindow) -> None:
    p = window.launch_panel
    reasons = {**p.speculative.auto_why, "draft": p.speculative.draft_auto_why, **p.advanced.auto_why}
    spec = window.planner.plan.speculative
    combos = speculative_combos(window)
    assert set(p.advanced.mode) <= set(combos)
    for mid, combo in combos.items():
        fm = combo.fontMetrics()
        assert fm.horizontalAdvance(combo.currentText()) <= text_width(combo), (mid, combo.currentText())
        if combo.isEnabled() and combo.currentIndex() == 0 and mid in spec.auto_off:
            assert combo.currentText() == "Auto (off)"
            assert shown_whole(reasons[mid], p), mid
            assert spec.auto_off[mid] in reasons[mid].text()
    # a long reason, as after Tune's "Use this": the combo stays short, the line under it says it all
    box = SpeculativeBox()
    qtbot.addWidget(box)
    box.resize(560, 400)
    box.show()
    long = ("the measurement on this machine chose ngram-simple + ngram-map-k, which drafted faster on both "
            "prompts than ngram-mod did")
    box.show_decision(SpeculativeDecision(methods=["ngram-simple"], auto_off={"ngram-mod": long}))
    combo = box.mode["ngram-mod"]
    assert combo.currentText() == "Auto (off)" and combo.itemData(0, Qt.ItemDataRole.ToolTipRole).endswith(long)
    qtbot.waitUntil(lambda: shown_whole(box.auto_why["ngram-mod"], box), timeout=WAIT)
    assert box.auto_why["ngram-mod"].text() == f"Off: {long}"
    combo.setCurrentIndex(combo.findData(SpecMode.ON.value))  # not Auto: Auto's reason is not the row's
    assert not box.auto_why["ngram-mod"].isVisibleTo(box)


def test_each_greyed_group_says_why_beside_it(qtbot, window: MainWindow) -> None:
    p = window.launch_panel
    adv, spec_box = p.advanced, p.speculative

    def check() -> None:
        for mid, why in adv.knob_why.items():
            greyed = [adv.knobs[k] for k in BY_ID[mid].knobs if not adv.knobs[k].isEnabled()]
            if greyed:
                assert shown_whole(why, p), mid
            else:
                assert not why.isVisibleTo(p), mid
        drafters = (adv.draft_n_min, adv.draft_p_min, adv.draft_sampling, adv.draft_cache_type)
        assert len({d.isEnabled() for d in drafters}) == 1
        assert shown_whole(adv.drafter_why, p) == (not adv.draft_n_min.isEnabled())
        # the draft length's checkbox and slider agree, and a greyed row says why
        assert spec_box.draft_default.isEnabled() == spec_box.draft.isEnabled() == spec_box.draft_number.isEnabled()
        if not spec_box.draft.isEnabled():
            assert shown_whole(spec_box.draft_value, p)

    # a tiny model on the CPU: ngram-mod runs; the newer types, the drafters and the draft length do not
    assert not adv.knobs["ngram_simple_size_n"].isEnabled() and not adv.draft_n_min.isEnabled()
    assert not spec_box.draft.isEnabled()
    check()
    assert adv.knob_why["ngram-simple"].text() == "ngram-simple does not run now, so its knobs do not apply"
    assert adv.drafter_why.text().startswith("these tune MTP, a head or a draft model")
    ngram_mod = spec_box.mode["ngram-mod"]
    ngram_mod.setCurrentIndex(ngram_mod.findData("off"))
    qtbot.waitUntil(lambda: not adv.knobs["ngram_n_match"].isEnabled(), timeout=WAIT)
    check()
    assert adv.knob_why["ngram-mod"].text() == "ngram-mod is Off: set it to Auto or On to use these"
    simple = adv.mode["ngram-simple"]
    simple.setCurrentIndex(simple.findData("on"))
    qtbot.waitUntil(lambda: adv.knobs["ngram_simple_size_n"].isEnabled(), timeout=WAIT)
    check()


def test_the_preview_shows_whole_rows_each_wrapped_in_full(qtbot, window: MainWindow) -> None:
    tree = window.launch_panel.preview.tree
    vp = tree.viewport().rect()
    items = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    seen = [it for it in items if tree.visualItemRect(it).intersects(vp)]
    assert len(seen) >= 4  # a sensible height at the default size
    for it in seen:  # no row cut in half: each one seen is seen whole
        assert vp.contains(tree.visualItemRect(it)), it.text(0)
    assert len(seen) == len(items) or tree.verticalScrollBar().maximum() > 0  # the rest is a scroll away
    for it in items:  # each row as tall as its wrapped text in both columns: nothing elided
        tree.scrollToItem(it)
        for col in (0, 1):
            need = tree.fontMetrics().boundingRect(QRect(0, 0, tree.columnWidth(col) - 10, 1 << 20),
                                                   Qt.TextFlag.TextWordWrap, it.text(col)).height()
            assert tree.visualItemRect(it).height() >= need, it.text(col)
        assert tree.viewport().rect().contains(tree.visualItemRect(it)), it.text(0)  # scrolled to: whole
    words = " ".join(it.text(1) for it in items)
    assert "comma-chained" not in words and "branch" not in words
