"""The urgent safety net (components/urgent_cues.py) and its reviewed cue file.

Runs in the Rasa environment. The cue file must cover exactly the catalogue's
urgent topics; cues must fire on emergencies written in citizens' words and
stay silent on questions that merely mention hospitals, insurance, vaccines,
local laws or lost things; and the component must only ever turn a
non-urgent prediction into an urgent one, saying why.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from bot.catalogue import URGENT_SLUGS  # noqa: E402
from components.urgent_cues import (  # noqa: E402
    URGENT_OVERRIDE_KEY,
    CueError,
    CueHit,
    UrgentCues,
    UrgentSafetyNet,
    compile_cue,
    first_words,
    normalise,
)

CUES = ROOT / "data" / "urgent_cues.yml"
PROBES = ROOT / "tests" / "rasa" / "urgent_probes.yml"
CLINC = ROOT.parent / "shared" / "eval" / "clinc150" / "data_full.json"
# Reviewed: non-urgent training examples where a cue firing is the right call.
ACCEPTED_ON_NON_URGENT = {
    # The son is in prison: an officer should see it, whatever else is asked.
    "my son is in prison in dubai and we think the sentence is unfair. can the british "
    "government get him out and bring him home",
}


@pytest.fixture(scope="module")
def cues() -> UrgentCues:
    return UrgentCues.from_file(CUES)


def topics(cues: UrgentCues, text: str) -> set[str]:
    return {hit.topic for hit in cues.matches(text)}


# -- the data file ------------------------------------------------------------------


def test_the_cue_file_loads_and_covers_exactly_the_urgent_topics(cues: UrgentCues) -> None:
    assert set(cues.slugs) == set(URGENT_SLUGS)
    assert len(cues.slugs) == len(set(cues.slugs))


def test_every_cue_topic_has_an_intent_in_the_domain(cues: UrgentCues) -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    for slug in cues.slugs:
        assert slug.replace("-", "_") in domain["intents"]


def test_the_cue_file_is_not_rasa_training_data() -> None:
    # Rasa reads every YAML file under data/: a top-level "nlu", "stories" or
    # "rules" key would make the cue file look like training data.
    document = yaml.safe_load(CUES.read_text())
    assert not {"nlu", "stories", "rules", "version"} & set(document)


# -- cues fire on emergencies in citizens' words -------------------------------------


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("my son has been ARRESTED in dubai!!", "arrest-detention"),
        ("boyfriend arested last nite", "arrest-detention"),
        ("my brother is in a prison in peru", "arrest-detention"),
        ("police took my wife away and are holding her", "arrest-detention"),
        ("my dad passed away on holiday", "death-abroad"),
        ("how do i bring my mums body home from spain", "death-abroad"),
        ("my friend drowned off the beach", "death-abroad"),
        ("my husband is in intensive care after a heart attack", "hospital-abroad"),
        ("my daughter's in hospital after a moped crash", "hospital-abroad"),
        ("i was mugged and beaten up last night", "crime-victim"),
        ("some guy pulled a knife on me", "crime-victim"),
        ("i think i was raped", "sexual-assault"),
        ("a man groped me in the club", "sexual-assault"),
        ("my son has gone missing in the mountains", "missing-person"),
        ("i cant get hold of my daughter for days", "missing-person"),
        ("her phone goes straight to voicemail and she hasn't come back", "missing-person"),
        ("my husband has been kidnapped", "kidnap"),
        ("they want a ransom for my brother", "kidnap"),
        ("my family are forcing me to marry my cousin", "forced-marriage"),
        ("they're marrying her off next month", "forced-marriage"),
        ("my ex took our son abroad without my consent", "child-abduction"),
        ("my wife won't bring the kids back from poland", "child-abduction"),
        ("there's been an earthquake and our hotel is damaged", "crisis-disaster"),
        ("we need to be evacuated", "crisis-disaster"),
        ("i want to kill myself", "wellbeing-crisis"),
        ("i don't want to be alive anymore", "wellbeing-crisis"),
        ("im having a panic attack and cant breathe", "wellbeing-crisis"),
    ],
)
def test_a_cue_fires(cues: UrgentCues, text: str, topic: str) -> None:
    assert topic in topics(cues, text)


# -- and stays silent on questions that only mention such things ---------------------

NOT_URGENT = [
    "does travel insurance cover hospital bills",
    "will my insurance pay if i end up in hospital abroad",
    "which vaccinations do i need for the hospital placement in kenya",
    "how good is the healthcare in bali",
    "how do i avoid heat stroke in dubai",
    "can you be arrested for vaping in thailand",
    "is it illegal to chew gum in singapore",
    "what happens if you overstay your visa in the usa",
    "is it safe to travel to turkey after the earthquake",
    "is there a risk of hurricanes in florida in september",
    "when is monsoon season in india",
    "is there a terrorism threat in france",
    "my passport was stolen in barcelona",
    "someone nicked my passport on the beach",
    "the airline lost my luggage and it is still missing",
    "my parcel went missing in the post",
    "the embassy is not answering the phone",
    "we want to get married in italy next year",
    "certificate of no impediment for a wedding in greece",
    "how do i register my baby born in a hospital in spain",
    "my phone died, can i call you",
    "what's the weather like in the dead sea",
    "how do i get an apostille for a hague convention country",
    "can i take my children abroad on holiday",
    "play some death metal",
    "how do i report my credit card as stolen",
    "what is the shooting schedule for the film",
]


@pytest.mark.parametrize("text", NOT_URGENT)
def test_no_cue_fires(cues: UrgentCues, text: str) -> None:
    assert cues.matches(text) == []


def test_no_cue_fires_on_the_not_urgent_probes(cues: UrgentCues) -> None:
    probes = yaml.safe_load(PROBES.read_text())["not_urgent"]
    assert [text for text in probes if cues.matches(text)] == []


def _training_examples() -> list[tuple[str, str]]:
    examples = []
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for block in yaml.safe_load(path.read_text())["nlu"]:
            for line in block.get("examples", "").splitlines():
                if line.startswith("- "):
                    examples.append((line[2:].strip().strip('"'), block["intent"]))
    return examples


def test_no_cue_fires_on_non_urgent_training_examples(cues: UrgentCues) -> None:
    urgent = {slug.replace("-", "_") for slug in URGENT_SLUGS}
    fired = [
        text
        for text, intent in _training_examples()
        if intent not in urgent and cues.matches(text) and text not in ACCEPTED_ON_NON_URGENT
    ]
    assert fired == []


def test_cues_cover_most_urgent_training_examples(cues: UrgentCues) -> None:
    # The classifier learns the rest; a cue file that stopped matching would
    # show here first.
    urgent = {slug.replace("-", "_") for slug in URGENT_SLUGS}
    texts = [text for text, intent in _training_examples() if intent in urgent]
    assert sum(bool(cues.matches(t)) for t in texts) / len(texts) >= 0.95


@pytest.mark.skipif(not CLINC.exists(), reason="shared/eval is not beside the repository")
def test_cues_are_silent_on_clinc_train_and_validation(cues: UrgentCues) -> None:
    # Only the splits we may look at (shared/eval/README.md); never the test split.
    clinc = json.loads(CLINC.read_text())
    texts = [text for split in ("train", "oos_train", "val", "oos_val") for text, _ in clinc[split]]
    fired = [text for text in texts if cues.matches(text)]
    assert len(fired) <= len(texts) // 1000, fired


def _reference_matches(cues: UrgentCues, text: str) -> list[CueHit]:
    """``UrgentCues.matches`` the long way: every topic, every cue, in file order."""
    padded = f" {normalise(text)} "
    if any(pattern.search(padded) for _, pattern in cues.unless):
        return []
    hits = []
    for topic in cues.topics:
        if any(pattern.search(padded) for _, pattern in topic.unless):
            continue
        for cue in topic.cues:
            found = cue.match(padded)
            if found is not None:
                hits.append(CueHit(topic.slug, cue.label, found))
                break
    return hits


def _every_text() -> list[str]:
    probes = yaml.safe_load(PROBES.read_text())
    texts = [text for text, _ in _training_examples()] + probes["urgent"] + probes["not_urgent"]
    if CLINC.exists():
        clinc = json.loads(CLINC.read_text())
        texts += [
            text for split in ("train", "oos_train", "val", "oos_val") for text, _ in clinc[split]
        ]
    return texts


def test_the_shortcuts_find_what_trying_every_cue_finds(cues: UrgentCues) -> None:
    # Topics are skipped on their cues' words, and ``unless`` is only read
    # after a cue matched: neither may change a single result.
    texts = _every_text()
    found = [cues.matches(text) for text in texts]
    assert found == [_reference_matches(cues, text) for text in texts]
    assert sum(map(bool, found)) > 500  # plenty of emergencies among them


def test_a_topic_is_never_skipped_when_one_of_its_cues_matches(cues: UrgentCues) -> None:
    for text in _every_text():
        padded = f" {normalise(text)} "
        words = padded.split()
        for topic in cues.topics:
            if topic.any_simple is not None and topic.any_simple.search(padded):
                assert not topic.words.isdisjoint(words) or any(
                    word.startswith(topic.prefixes) for word in words
                ), (topic.slug, text)


def test_first_words_come_from_the_longest_required_words() -> None:
    groups = {"person": ["son", "daughter*", "best friend"]}
    assert first_words("i was arrested", {}) == (frozenset({"arrested"}), ())
    assert first_words("arrest*|detained", {}) == (frozenset({"detained"}), ("arrest",))
    assert first_words("my? {person} (passed away|died)", groups) == (
        frozenset({"passed", "died"}),
        (),
    )
    # Optional words and gaps are never chosen, however long.
    assert first_words("hospitalised? .. in (a coma)", {}) == (frozenset({"in"}), ())
    assert first_words("{person} is", groups) == (frozenset({"son", "best"}), ("daughter",))


def test_probes_are_not_training_data() -> None:
    probes = yaml.safe_load(PROBES.read_text())
    trained = {normalise(text) for text, _ in _training_examples()}
    assert [t for t in probes["urgent"] + probes["not_urgent"] if normalise(t) in trained] == []


# -- the syntax ------------------------------------------------------------------------


def match(cue: str, text: str, groups: dict[str, list[str]] | None = None) -> bool:
    return bool(compile_cue(cue, groups or {}).search(f" {normalise(text)} "))


def test_syntax_words_prefixes_alternatives_optional_gaps_groups() -> None:
    assert match("arrest*", "they arrested him")
    assert not match("arrest*", "they prearrested him")
    assert match("in a|the? prison", "in prison") and match("in a|the? prison", "in a prison")
    assert match("(do not|dont) want", "I don't want to")
    assert match("(do not|dont) want", "i do not want to")
    assert match("forced .. marry", "forced my sister to marry")
    assert not match("forced .. marry", "forced us all to go and then marry")
    assert match("my {person}", "my Mum", {"person": ["mum", "dad*"]})
    assert match("my {person}", "my daddy", {"person": ["mum", "dad*"]})
    assert not match("in hospital", "hospital bills")


def test_normalise_drops_apostrophes_and_punctuation() -> None:
    assert normalise("She’s NOT answering!! (since Fri)") == "shes not answering since fri"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"topics": {"kidnap": {"cues": ["(held (hostage))"]}}}, "nested"),
        ({"topics": {"kidnap": {"cues": ["held (hostage"]}}}, "nested or left open"),
        ({"topics": {"kidnap": {"cues": ["{nobody} held"]}}}, "unknown group"),
        ({"groups": {"who": ["son|daughter"]}, "topics": {"kidnap": {"cues": ["x"]}}}, "plain"),
        ({"topics": {"kidnap": {"cues": []}}}, "no cues"),
        ({"topics": {"kidnap": {"cues": [".. held"]}}}, "gap"),
        ({"topics": {"kidnap": {"cues": [{"any": ["held"]}]}}}, "a cue is"),
        ({"cues": []}, "topics"),
    ],
)
def test_malformed_cue_files_are_rejected(document: dict, message: str) -> None:
    with pytest.raises(CueError, match=re.escape(message)):
        UrgentCues(document)


def test_all_and_unless() -> None:
    cues = UrgentCues(
        {
            "unless": ["travel insurance"],
            "topics": {
                "child-abduction": {
                    "cues": [{"all": ["ex", "kids"], "unless": ["passport*"]}],
                    "unless": ["hague"],
                }
            },
        }
    )
    assert cues.matches("my ex has the kids and wont return them")[0].matched == "ex … kids"
    assert cues.matches("kids and ex passports") == []
    assert cues.matches("my ex took the kids, hague") == []
    assert cues.matches("my ex took the kids, travel insurance") == []
    assert cues.matches("my ex took the car") == []


# -- the component ----------------------------------------------------------------------


def message(text: str, ranking: dict[str, float]) -> Message:
    ordered = sorted(ranking.items(), key=lambda item: -item[1])
    msg = Message(data={TEXT: text})
    msg.set(INTENT, {"name": ordered[0][0], "confidence": ordered[0][1]})
    msg.set(INTENT_RANKING_KEY, [{"name": n, "confidence": c} for n, c in ordered])
    return msg


@pytest.fixture()
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


@pytest.fixture()
def net(storage: LocalModelStorage) -> UrgentSafetyNet:
    resource = Resource("urgent_safety_net")
    component = UrgentSafetyNet.create(
        {"cues": str(CUES)}, storage, resource, ExecutionContext(GraphSchema({}), "test")
    )
    intents = [slug.replace("-", "_") for slug in URGENT_SLUGS] + ["out_of_scope"]
    data = TrainingData([Message(data={TEXT: f"x {i}", INTENT: i}) for i in intents])
    component.train(data)
    return UrgentSafetyNet.load(
        {"cues": str(CUES)}, storage, resource, ExecutionContext(GraphSchema({}), "test")
    )


def test_a_cue_overrides_a_non_urgent_prediction_and_says_why(net: UrgentSafetyNet) -> None:
    msg = message(
        "my husband had a heart attack on holiday",
        {"greet": 0.5, "out_of_scope": 0.3, "hospital_abroad": 0.05, "death_abroad": 0.02},
    )
    net.process([msg])
    assert msg.get(INTENT)["name"] == "hospital_abroad"
    assert msg.get(INTENT_RANKING_KEY)[0]["name"] == "hospital_abroad"
    override = msg.get(URGENT_OVERRIDE_KEY)
    assert override["reason"] == "cue"
    assert override["matched"] == "heart attack"
    assert override["classified_as"]["name"] == "greet"
    assert URGENT_OVERRIDE_KEY in msg.as_dict(only_output_properties=True)


def test_among_matched_topics_the_classifiers_favourite_wins(net: UrgentSafetyNet) -> None:
    # "drowned" (death) and "in hospital" (hospital) both match.
    msg = message(
        "my son nearly drowned and is in hospital",
        {"out_of_scope": 0.6, "hospital_abroad": 0.2, "death_abroad": 0.1},
    )
    net.process([msg])
    assert msg.get(INTENT)["name"] == "hospital_abroad"
    assert set(msg.get(URGENT_OVERRIDE_KEY)["topics"]) >= {"death-abroad", "hospital-abroad"}


def test_the_fallback_is_overridden_too(net: UrgentSafetyNet) -> None:
    msg = message("kidnapped", {"nlu_fallback": 0.35, "out_of_scope": 0.3, "greet": 0.2})
    net.process([msg])
    assert msg.get(INTENT)["name"] == "kidnap"


def test_an_urgent_prediction_is_left_alone(net: UrgentSafetyNet) -> None:
    msg = message("my son was arrested and is in hospital", {"arrest_detention": 0.7, "x": 0.3})
    net.process([msg])
    assert msg.get(INTENT)["name"] == "arrest_detention"
    assert msg.get(URGENT_OVERRIDE_KEY) is None


@pytest.mark.parametrize("text", NOT_URGENT[:6])
def test_a_non_urgent_message_is_left_alone(net: UrgentSafetyNet, text: str) -> None:
    msg = message(text, {"travel_health": 0.6, "hospital_abroad": 0.2, "out_of_scope": 0.2})
    net.process([msg])
    assert msg.get(INTENT)["name"] == "travel_health"
    assert msg.get(URGENT_OVERRIDE_KEY) is None


def test_urgent_intents_together_outweighing_the_rest_make_it_urgent(
    net: UrgentSafetyNet,
) -> None:
    # No cue, but the classifier hesitated between two emergencies and fell back.
    msg = message(
        "they will not tell us where he is",
        {
            "nlu_fallback": 0.35,
            "kidnap": 0.33,
            "arrest_detention": 0.31,
            "out_of_scope": 0.2,
            "travel_advice": 0.16,
        },
    )
    net.process([msg])
    assert msg.get(INTENT)["name"] == "kidnap"
    override = msg.get(URGENT_OVERRIDE_KEY)
    assert override["reason"] == "urgent share"
    assert override["urgent_share"] == pytest.approx(0.64)


def test_a_small_urgent_share_is_not_enough(net: UrgentSafetyNet) -> None:
    msg = message(
        "they will not tell us anything", {"what_we_cannot_do": 0.6, "kidnap": 0.25, "x": 0.15}
    )
    net.process([msg])
    assert msg.get(INTENT)["name"] == "what_we_cannot_do"


def test_training_rejects_a_topic_without_an_intent(
    storage: LocalModelStorage, tmp_path: Path
) -> None:
    cue_file = tmp_path / "cues.yml"
    cue_file.write_text("topics:\n  no-such-topic:\n    cues: [help]\n")
    component = UrgentSafetyNet.create(
        {"cues": str(cue_file)},
        storage,
        Resource("net"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    with pytest.raises(CueError, match="no-such-topic"):
        component.train(TrainingData([Message(data={TEXT: "hi", INTENT: "greet"})]))


def test_editing_the_cue_file_changes_the_fingerprint(tmp_path: Path) -> None:
    cue_file = tmp_path / "cues.yml"
    cue_file.write_text("topics:\n  kidnap:\n    cues: [kidnapped]\n")
    before = UrgentSafetyNet.fingerprint_addon({"cues": str(cue_file)})
    cue_file.write_text("topics:\n  kidnap:\n    cues: [kidnapped, hostage]\n")
    assert UrgentSafetyNet.fingerprint_addon({"cues": str(cue_file)}) != before


def test_the_share_reads_the_whole_ranking_and_then_the_ranking_is_cut(
    storage: LocalModelStorage,
) -> None:
    resource = Resource("urgent_safety_net")
    config = {"cues": str(CUES), "ranking_length": 3}
    context = ExecutionContext(GraphSchema({}), "test")
    component = UrgentSafetyNet.create(config, storage, resource, context)
    intents = [slug.replace("-", "_") for slug in URGENT_SLUGS] + ["out_of_scope"]
    component.train(TrainingData([Message(data={TEXT: f"x {i}", INTENT: i}) for i in intents]))
    net = UrgentSafetyNet.load(config, storage, resource, context)
    # Three non-urgent intents ahead, then six urgent ones that together hold
    # 0.58: the share counts all of them, though none is in the first three.
    ranking = {f"topic_{n}": 0.14 for n in range(3)}
    ranking.update(kidnap=0.1, arrest_detention=0.096, missing_person=0.096)
    ranking.update(death_abroad=0.096, hospital_abroad=0.096, sexual_assault=0.096)
    msg = message("they will not tell us where he is", ranking)
    net.process([msg])
    assert msg.get(INTENT)["name"] == "kidnap"
    assert msg.get(URGENT_OVERRIDE_KEY)["urgent_share"] == pytest.approx(0.58)
    assert [entry["name"] for entry in msg.get(INTENT_RANKING_KEY)] == [
        "kidnap",
        "topic_0",
        "topic_1",
    ]
    # Without the option the default cuts to ten; 0 keeps everything.
    long_ranking = {f"topic_{n}": 0.9 / 15 for n in range(15)}
    assert UrgentSafetyNet.get_default_config()["ranking_length"] == 10
    for keep, expected in ((0, 15), (10, 10)):
        kept = UrgentSafetyNet({**config, "ranking_length": keep}, storage, resource)
        msg = message("where is the embassy", long_ranking)
        kept.process([msg])
        assert len(msg.get(INTENT_RANKING_KEY)) == expected
