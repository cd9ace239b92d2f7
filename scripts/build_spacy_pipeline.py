"""Builds the project's own spaCy pipeline from files in data/.

Pretrained spaCy models cannot be downloaded here, so the pipeline is blank
English plus:
- a lookup lemmatizer (spacy-lookups-data's English table) extended with the
  spelling variants visitors type for the words in our own training data
  ("siatica" -> "sciatica", "sesions" -> "session"), so that everything
  downstream sees the corrected word;
- an EntityRuler labelling the nine muscles (and their common names) as
  `muscle`, in any case, and by lemma so misspelled or plural names are
  found too.

Usage: python scripts/build_spacy_pipeline.py OUTPUT_DIR
"""

import gzip
import json
import re
import shutil
import sys
from pathlib import Path

import spacy
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clinic.muscles import load_muscle_names  # noqa: E402

SPELLING_FILE = ROOT / "data" / "spacy" / "spelling.yml"
NLU_DIR = ROOT / "data" / "nlu"

# A variant more frequent than this (log probability in the English lexeme
# table) is a real word ("paid" for "pain") and is never "corrected".
REAL_WORD_LOGPROB = -15.0
# A visitor's word at least this frequent is spelled right ("needling" is
# -16.4, "insurence" -17.4, "siatica" absent).
KNOWN_WORD_LOGPROB = -17.0
MIN_WORD_LENGTH = 5
KEYBOARD_NEIGHBOURS = {
    "q": "wa", "w": "qes", "e": "wrd", "r": "etf", "t": "ryg", "y": "tuh",
    "u": "yij", "i": "uok", "o": "ipl", "p": "ol", "a": "qsz", "s": "adwx",
    "d": "sfec", "f": "dgrv", "g": "fhtb", "h": "gjyn", "j": "hkun",
    "k": "jlim", "l": "kop", "z": "xa", "x": "zcs", "c": "xvd", "v": "cbf",
    "b": "vng", "n": "bmh", "m": "nj",
}
VOWELS = "aeiou"
WORD = re.compile(r"[a-z]+")


def lookups_data_file(name: str) -> Path:
    import spacy_lookups_data

    return Path(spacy_lookups_data.__file__).parent / "data" / name


def domain_words(logprob: dict) -> set:
    """The correctly spelled words of the domain: every word of the answers
    (written with care), and the words of the visitors' examples that are
    known English (the examples also hold typos such as "siatica", which are
    what gets corrected, not what to correct to)."""
    answer_words, example_words = set(), set()
    for path in sorted(NLU_DIR.glob("*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in content.get("nlu") or []:
            example_words.update(WORD.findall(str(item.get("examples", "")).lower()))
        for variations in (content.get("responses") or {}).values():
            for variation in variations:
                answer_words.update(WORD.findall(str(variation.get("text", "")).lower()))
    known = {word for word in example_words if logprob.get(word, -99.0) > KNOWN_WORD_LOGPROB}
    return answer_words | known


def typo_variants(word: str) -> set:
    """The typos people actually make: a letter dropped, doubled, swapped with
    its neighbour, or replaced by a nearby key or another vowel."""
    variants = set()
    for i in range(len(word)):
        variants.add(word[:i] + word[i + 1 :])
        variants.add(word[:i] + word[i] + word[i:])
        if i + 1 < len(word):
            variants.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
        replacements = KEYBOARD_NEIGHBOURS.get(word[i], "")
        if word[i] in VOWELS:
            replacements += VOWELS
        for letter in replacements:
            variants.add(word[:i] + letter + word[i + 1 :])
    variants.discard(word)
    return variants


def spelling_corrections(lemma_table, words: set, logprob: dict) -> dict:
    """Maps misspelled forms to the lemma of the domain word they came from."""

    def lemma(word: str) -> str:
        return lemma_table.get(word, word)

    corrections = {}
    ambiguous = set()
    for word in sorted(words):
        if len(word) < MIN_WORD_LENGTH:
            continue
        for variant in typo_variants(word):
            if variant in words or logprob.get(variant, -99.0) > REAL_WORD_LOGPROB:
                continue
            target = lemma(word)
            if corrections.get(variant, target) != target:
                ambiguous.add(variant)
            corrections[variant] = target
    for variant in ambiguous:
        del corrections[variant]
    return corrections


def build(output_dir: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")

    spelling = yaml.safe_load(SPELLING_FILE.read_text(encoding="utf-8"))
    logprob = json.load(gzip.open(lookups_data_file("en_lexeme_prob.json.gz")))
    generated = spelling_corrections(table, domain_words(logprob), logprob)
    explicit = {k.lower(): v.lower() for k, v in (spelling.get("corrections") or {}).items()}
    lemma_fixes = {k.lower(): v.lower() for k, v in (spelling.get("lemmas") or {}).items()}
    for form, target in {**generated, **explicit, **lemma_fixes}.items():
        table[form] = target

    # Rasa's SpacyEntityExtractor runs the pipeline on the text as typed
    # (other components see it lower-cased), so each name is matched both by
    # its lower-case form ("QL") and by its lemmas ("calves", "piriformus").
    ruler = nlp.add_pipe("entity_ruler", config={"validate": True})
    patterns = []
    for name in load_muscle_names():
        words = [token.text for token in nlp.make_doc(name)]
        lemmas = [token.lemma_ for token in nlp(name)]
        patterns.append({"label": "muscle", "pattern": [{"LOWER": w} for w in words]})
        patterns.append({"label": "muscle", "pattern": [{"LEMMA": lemma} for lemma in lemmas]})
    ruler.add_patterns(patterns)

    nlp.meta["name"] = "clinic_en"
    nlp.meta["version"] = "1.0.0"
    nlp.meta["description"] = (
        "Blank English, lemmas with domain spelling variants, muscle EntityRuler"
    )
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output_dir)
    print(
        f"spaCy pipeline written to {output_dir}: "
        f"{len(generated)} generated and {len(explicit)} listed spelling "
        f"corrections, {len(load_muscle_names())} muscle names"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build(Path(sys.argv[1]))
