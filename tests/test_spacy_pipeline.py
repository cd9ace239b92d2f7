"""The project's own spaCy pipeline (build/spacy/, built from data/)."""

import pytest
import spacy

from clinic import PROJECT_ROOT
from clinic.muscles import load_muscle_names, muscle_id_for


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(PROJECT_ROOT / "build" / "spacy" / "clinic_en")


@pytest.mark.parametrize(
    "text,mention,muscle_id",
    [
        ("QL?", "QL", "quadratus_lumborum"),
        ("Can my Calves cause sciatica?", "Calves", "gastrocnemius"),
        ("what about the piriformus", "piriformus", "piriformis"),
        ("Glute Med trigger points", "Glute Med", "gluteus_medius"),
        ("tell me about my glutes", "glutes", "glutes"),
        ("ERECTOR SPINAE", "ERECTOR SPINAE", "erector_spinae"),
    ],
)
def test_muscles_are_found_in_any_case_and_spelling(nlp, text, mention, muscle_id):
    entities = [(e.text, e.label_) for e in nlp(text).ents]
    assert entities == [(mention, "muscle")]
    assert muscle_id_for(mention) == muscle_id


def test_every_listed_muscle_name_is_found(nlp):
    missed = [name for name in load_muscle_names() if [e.text.lower() for e in nlp(f"what about the {name}?").ents] != [name]]
    assert missed == []


def test_ordinary_words_are_not_muscles(nlp):
    assert list(nlp("how many sessions will i need for my back pain").ents) == []


@pytest.mark.parametrize(
    "typed,lemma",
    [("siatica", "sciatica"), ("sesions", "session"), ("acupunture", "acupuncture"), ("neddling", "needle"), ("u", "you")],
)
def test_typos_and_texting_shorthand_are_folded_into_the_word(nlp, typed, lemma):
    assert nlp(typed)[0].lemma_ == lemma


def test_real_words_are_never_corrected(nlp):
    # "paid" is one letter from "pain", "call" from "calf": both are words
    assert [t.lemma_ for t in nlp("paid call")] == ["pay", "call"]
