"""Cutting a visitor's message into its sentences and questions by its words
alone, before any model sees them (components/questions.py classifies the
parts): sentence ends, clauses that start a new question, questions listed
with commas, and the two questions in "can it help with A and B?".
"""

import re
from typing import List, Text

# More parts than this are not looked at (a pasted essay is one message).
MAX_PARTS = 6

# Sentence ends, a colon before the questions ("Quick q's: is it safe, ..."),
# and the numbers of a numbered list ("1) does it help 2) how many sessions").
_SENTENCE_END = re.compile(r"(?<=[?!.:])\s+|\n+|\s*(?<!\w)\(?\d{1,2}\)\s+")
# A clause that starts a new question: "..., and how many ...", "... also is it ..."
_QUESTION_START = (
    r"(?:how|hw|what|whats|what's|wat|wats|wut|which|who|whos|who's|where|when|why|is|are|can|cn|could|do|does|did|"
    r"will|would|should|shall|may|any|if|r|u|you|tell|explain)\b"
)
# "n" and "&" are texting's "and"
_CLAUSE_SPLIT = re.compile(
    r"(?:,\s*|\s+)(?:and(?:\s+also)?|also|plus|&|n)\s+(?=" + _QUESTION_START + ")", re.IGNORECASE
)
_LOOKS_LIKE_QUESTION = re.compile(
    r"\?\s*$|^\W*(?:(?:and|also|plus|so|but|oh|ok|okay|hi|hey|hello|hmm|um|yeah|yes|no|well)\W+)*" + _QUESTION_START,
    re.IGNORECASE,
)

# Questions listed with commas start with one of these ("if it hurts, is
# that normal?" is one question).
_STARTS_AS_QUESTION = re.compile(
    r"(?:how|hw|what|whats|what's|wat|wats|wut|which|who|where|when|why|is|are|can|cn|could|do|does|did|will|would|"
    r"should)\b",
    re.IGNORECASE,
)
# What comes before the questions and asks nothing: "sounds good, how do I
# book and ...", "ok so, is it safe, ...".
_LEAD_IN = re.compile(
    r"^(?:(?:sounds good|ok|okay|ok so|great|thanks|thank you|thx|hi|hey|hello|cool|perfect|alright|got it|"
    r"ah|oh|hmm|so|well|yes|yeah|no|nope|sure)\W*)+,\s*(?=" + _QUESTION_START + ")",
    re.IGNORECASE,
)
_COMMA = re.compile(r",\s*")
# "A and B" inside one question: the variant for B repeats the words up to
# the last of these before A ("help with the pain and the numbness").
_CONJUNCTION = re.compile(r"\s+(?:and|&)\s+(?!" + _QUESTION_START + ")", re.IGNORECASE)
_ANCHOR = re.compile(
    r"\b(?:with|for|on|about|help|helps|improve|reduce|treat|fix|ease|relieve|good for|work for)\b", re.IGNORECASE
)


def conjunct_variants(clause: Text) -> List[Text]:
    """[the question about A, the question about B] for a question "... A and
    B ..." with one "and"; [] when it is not such a question."""
    if not looks_like_question(clause):
        return []
    pieces = _CONJUNCTION.split(clause)
    if len(pieces) != 2:
        return []
    left, right = pieces[0].strip(), pieces[1].strip()
    anchors = list(_ANCHOR.finditer(left))
    if not anchors or len(re.findall(r"\w+", left[anchors[-1].end():])) == 0:
        return []
    prefix = left[: anchors[-1].end()]
    return [left, f"{prefix} {right}"]


def _listed_questions(clause: Text) -> List[Text]:
    """"is it safe, how much is it": the questions a clause lists with commas,
    when each starts as a question does; else the clause."""
    clause = _LEAD_IN.sub("", clause)
    pieces = [piece.strip() for piece in _COMMA.split(clause)]
    if len(pieces) > 1 and all(_STARTS_AS_QUESTION.match(piece) for piece in pieces):
        return pieces
    return [clause]


def split_parts(text: Text) -> List[Text]:
    """The sentences and question clauses of a text, in order."""
    parts: List[Text] = []
    for sentence in _SENTENCE_END.split(text or ""):
        for clause in _CLAUSE_SPLIT.split(sentence):
            for piece in _listed_questions(clause.strip(" ,;-")):
                piece = piece.strip(" ,;-")
                if len(re.findall(r"\w+", piece)) >= 2:
                    parts.append(piece)
    return parts[:MAX_PARTS]


def looks_like_question(text: Text) -> bool:
    """A question mark at the end, or a question's first words (after "and", "ok", "hi"...)."""
    return bool(_LOOKS_LIKE_QUESTION.search(text.strip()))


def starts_as_question(text: Text) -> bool:
    """Whether a text starts as a question does ("how much", "is it")."""
    return bool(_STARTS_AS_QUESTION.match(text))
