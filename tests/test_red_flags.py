"""The deterministic red-flag check, and the pipeline component built on it."""

import pytest

from clinic.red_flags import OWN_CASE_FILE, OWN_CASE_PREFIX, RedFlagMatcher, load_patterns, normalize

EMERGENCIES = [
    ("I lost bladder control after needling, is that normal?", "red_flag_bladder_bowel"),
    ("i peed myself and cant stop it", "red_flag_bladder_bowel"),
    ("I can’t tell when I need to pee anymore", "red_flag_bladder_bowel"),
    ("my groin has gone numb", "red_flag_saddle_numbness"),
    ("numbness in the saddle area since yesterday", "red_flag_saddle_numbness"),
    ("couldnt feel the toilet paper when wiping", "red_flag_saddle_numbness"),
    ("my left leg suddenly went weak", "red_flag_leg_weakness"),
    ("the weakness in my leg is getting worse every day", "red_flag_leg_weakness"),
    ("I have foot drop now", "red_flag_leg_weakness"),
    ("sciatica in both legs", "red_flag_both_legs"),
    ("pain shooting down both of my legs", "red_flag_both_legs"),
    ("the sciatica started after I fell off a ladder", "red_flag_trauma"),
    ("got rear-ended last week and now sciatica", "red_flag_trauma"),
    ("back pain with a fever", "red_flag_fever"),
    ("i have chest pain", "red_flag_chest_breathing"),
    ("hard to breathe after the needles in my back", "red_flag_chest_breathing"),
    ("THIS IS AN EMERGENCY", "red_flag_crisis"),
    # lay words and texting
    ("i can barely pee and my sciatica is bad", "red_flag_bladder_bowel"),
    ("he hasn't peed since yesterday and his back is bad", "red_flag_bladder_bowel"),
    ("i went to the toilet and didnt feel myself pee", "red_flag_bladder_bowel"),
    ("omg i think i peed a little without knowing", "red_flag_bladder_bowel"),
    ("tonight he can't properly feel his feet and things feel strange when he goes to the bathroom", "red_flag_bladder_bowel"),
    ("when I lie down my whole bottom area goes cold and numb and I'm having a hard time peeing", "red_flag_saddle_numbness"),
    ("when i wipe i cant really feel it", "red_flag_saddle_numbness"),
    ("cant lift the front of my foot at all since this morning", "red_flag_leg_weakness"),
    ("my toes catch on the carpet since last week", "red_flag_leg_weakness"),
    ("tonight my legs keep buckling under me when I stand", "red_flag_leg_weakness"),
    # a leg that will not carry the visitor, in their words
    ("woke up and cant stand on my right leg at all, it just buckles", "red_flag_leg_weakness"),
    ("my leg wont hold me up anymore since this morning", "red_flag_leg_weakness"),
    ("since last night I can't put weight on my left leg", "red_flag_leg_weakness"),
    ("his knees won't support him today", "red_flag_leg_weakness"),
    ("i can't stand up, my legs won't hold me", "red_flag_leg_weakness"),
    ("i can't walk all of a sudden", "red_flag_leg_weakness"),
    ("both my legs went numb this morning", "red_flag_both_legs"),
    ("I slipped on the ice this morning and now the pain down my leg is unbearable", "red_flag_trauma"),
    ("my mom fell down the stairs yesterday and now she has terrible back and leg pain", "red_flag_trauma"),
    ("after the car crash my back and leg hurt badly", "red_flag_trauma"),
    ("back pain and a temp of 102", "red_flag_fever"),
    ("today I'm crawling around the house and I can't really tell when I need to pee anymore", "red_flag_bladder_bowel"),
    ("I think my dad is having a stroke", "red_flag_chest_breathing"),
    ("since last night I can't really pee properly, like it won't start", "red_flag_bladder_bowel"),
    ("i'm not able to pee since this morning", "red_flag_bladder_bowel"),
    ("now my leg keeps giving out and it's getting worse every hour", "red_flag_leg_weakness"),
    ("since yesterday I can't really feel the toilet paper when I wipe", "red_flag_saddle_numbness"),
    ("peeing feels strange, like I have to push", "red_flag_bladder_bowel"),
    ("tripped on the stairs, now my back and leg are killing me", "red_flag_trauma"),
    # a denial nearby does not hide the symptom itself
    ("I have no bladder control", "red_flag_bladder_bowel"),
    ("I don't have control of my bladder anymore", "red_flag_bladder_bowel"),
    ("no fever and i cant pee", "red_flag_bladder_bowel"),
    ("never had bladder problems before but now i peed myself", "red_flag_bladder_bowel"),
    ("not sure if it's an emergency but I can't feel my groin", "red_flag_saddle_numbness"),
    ("no pain really, but both my legs went numb", "red_flag_both_legs"),
]

NOT_EMERGENCIES = [
    "what is dry needling",
    "can dry needling help numbness and tingling in my leg",
    "is muscle weakness a symptom of sciatica",
    "does a slipped disc cause sciatica",
    "my foot falls asleep when I sit, is that sciatica",
    "I fell asleep on the couch and woke up sore",
    "how many sessions do I need",
    "is it normal to be sore after dry needling",
    "how much does it cost",
    "the pain goes down my left leg",
    "book an appointment",
    # words of red flags, used for something else
    "do you treat sports injuries?",
    "can dry needling help whiplash?",
    "i cant stand needles, is dry needling painful?",
    "i can't stand sitting for long because of my sciatica",
    "I can't walk far without my leg hurting, can dry needling help?",
    "my sciatica started in the fall and never went away",
    "I fell in love with dry needling after my first session lol",
    "I slipped a disc years ago and now the sciatica is back",
    "I slipped a disc last year and now the sciatica is back",
    "both my calves are tight after running",
    "my legs both feel tight in the morning",
    "do you take no-fault insurance for car accident injuries?",
    "I had a car accident 10 years ago, could that be why my back hurts?",
    "does dry needling hurt? i pass out at the sight of needles",
    "my mom is on blood thinners since her stroke, can she get needled for her sciatica?",
    "my back went into spasm when I sneezed, worst pain of my life, can dry needling help?",
    # normal after-effects (the soreness answer, never 911)
    "I feel worse after my session, is that normal?",
    "the pain in my leg has been bad for months, can dry needling help?",
    "my leg is sore and a bit bruised where the needle went in",
    "i feel a bit weak and tired after the session today",
    "my leg fell asleep during the session lol, is that normal",
    "my muscle jumped really hard during the session, is that bad?",
    "woke up stiff the morning after needling, can barely turn",
    # red-flag words the visitor denies
    "no fever or anything, just achy after the needling today",
    "No bladder or bowel problems and no numbness down there, just really sore glutes after my session yesterday. Normal?",
    "not an emergency but my glute is bruised and achy after yesterday's needling, normal?",
    "pain has been a 9/10 for weeks, but no numbness or bathroom problems, just awful pain",
    "I don't have a fever, just sore",
    "no fever, numbness or bladder issues, just tight hamstrings",
    "no problems with my bladder or bowels, it's just the pain in my leg",
    "nothing serious like bladder stuff, just a sore butt after my first dry needling",
]


@pytest.fixture(scope="module")
def matcher() -> RedFlagMatcher:
    return RedFlagMatcher.from_file()


@pytest.mark.parametrize("text,flag", EMERGENCIES)
def test_every_kind_of_red_flag_is_found(matcher, text, flag):
    assert flag in matcher.find(text)


@pytest.mark.parametrize("text", NOT_EMERGENCIES)
def test_ordinary_questions_are_not_emergencies(matcher, text):
    assert matcher.find(text) == []


def test_every_red_flag_kind_of_the_issue_has_patterns():
    assert set(load_patterns()) >= {
        "red_flag_bladder_bowel", "red_flag_saddle_numbness", "red_flag_leg_weakness",
        "red_flag_both_legs", "red_flag_trauma", "red_flag_fever",
        "red_flag_chest_breathing", "red_flag_crisis",
    }


def test_normalize_straightens_quotes_and_case():
    assert normalize("  I CAN’T   feel ") == "i can't feel"


def test_every_emergency_training_example_matches_a_pattern(matcher):
    """The classifier learns from these; the patterns must not depend on it."""
    from clinic import DATA_DIR
    from clinic.nlu_data import nlu_examples

    examples = [text for text, label in nlu_examples(DATA_DIR / "nlu" / "safety.yml") if label == "report_emergency"]
    assert len(examples) >= 40
    assert [text for text in examples if not matcher.find(text)] == []


def test_no_other_training_example_matches_a_pattern(matcher):
    """A pattern that matches an FAQ example would send that question to 911."""
    from clinic import DATA_DIR
    from clinic.nlu_data import nlu_examples

    examples = [
        (text, label) for path in sorted((DATA_DIR / "nlu").glob("*.yml"))
        for text, label in nlu_examples(path) if label != "report_emergency"
    ]
    assert len(examples) > 1000
    assert [(text, label) for text, label in examples if matcher.find(text)] == []


def test_detector_overrides_a_confident_faq_prediction():
    """The component puts report_emergency first, whatever was predicted."""
    from rasa.shared.nlu.training_data.message import Message

    from components.red_flag_detector import RedFlagDetector

    patterns = [[name, regex] for name, regexes in load_patterns().items() for regex in regexes]
    detector = RedFlagDetector(model_storage=None, resource=None, patterns=patterns)
    faq = {"name": "faq", "confidence": 0.99}
    mixed = Message(data={"text": "I lost bladder control after needling, is that normal?", "intent": faq, "intent_ranking": [faq]})
    plain = Message(data={"text": "is it normal to be sore after needling?", "intent": faq, "intent_ranking": [faq]})
    detector.process([mixed, plain])
    assert mixed.get("intent") == {"name": "report_emergency", "confidence": 1.0}
    assert [i["name"] for i in mixed.get("intent_ranking")] == ["report_emergency", "faq"]
    assert mixed.get("red_flags") == ["red_flag_bladder_bowel"]
    assert plain.get("intent") == faq


OWN_CASE = [
    "my doctor told me no acupuncture because i take eliquis. is dry needling any different for someone like me?",
    "my daughter is 22 weeks pregnant with sciatica, could she get needling or is it risky",
    "I have a pacemaker. Is dry needling safe for me?",
    "im on blood thinners, can i still get dry needling",
    "I'm type 1 diabetic with some neuropathy in my feet. Is dry needling safe for me specifically?",
    "im breastfeeding, is it ok to get needled",
    "breastfeeding mom here, any issue with dry needling?",
    "my mom is 82 with sciatica, is she too old for dry needling?",
    "my 15 year old son has sciatica from football, can he get dry needling?",
    "I had a microdiscectomy 6 weeks ago and still have some leg pain. could dry needling help?",
    # who should not have it, and repairing a disc: neither is in the posts
    "who shouldnt get dry needling",
    "are there contraindications for dry needling?",
    "my MRI says L5-S1 herniated disc, will dry needling fix my disc",
    "can needling heal a bulging disc?",
    # medicines taken alongside the treatment, and teenagers
    "I take ibuprofen every day for my back, is it ok to keep taking it with dry needling?",
    "should i take tylenol before my session?",
    "do you treat teenagers? my son is 15 and has sciatica from football",
]
NOT_OWN_CASE = [
    "is dry needling safe?",
    "can dry needling help my sciatica? my doctor thinks I'm diabetic",
    "what is dry needling",
    "is it normal to be sore after dry needling",
    "why do so many pregnant women get sciatica?",
    "does a herniated disc cause sciatica?",
    "who does the dry needling at your clinic?",
    "will dry needling fix my sciatica?",
    "can i stop taking painkillers with dry needling?",
    "I want to get off my pain meds, could needling help?",
    "I'm 45 and have had sciatica for 2 years, can dry needling help?",
    "I'm not pregnant or on blood thinners, just have regular sciatica. Is dry needling safe for me?",
]


@pytest.fixture(scope="module")
def own_case() -> RedFlagMatcher:
    return RedFlagMatcher.from_file(OWN_CASE_FILE, OWN_CASE_PREFIX)


@pytest.mark.parametrize("text", OWN_CASE)
def test_what_only_a_clinician_can_judge_is_an_own_case_question(own_case, text):
    assert own_case.find(text) == ["own_case_clinician_judgement"]


@pytest.mark.parametrize("text", NOT_OWN_CASE)
def test_general_questions_are_not_own_case_questions(own_case, text):
    assert own_case.find(text) == []


def test_own_case_patterns_match_no_other_training_example(own_case):
    from clinic import DATA_DIR
    from clinic.nlu_data import nlu_examples

    examples = [pair for path in sorted((DATA_DIR / "nlu").glob("*.yml")) for pair in nlu_examples(path)]
    assert [(text, label) for text, label in examples if own_case.find(text) and label != "ask_personal_advice"] == []
    assert sum(1 for text, label in examples if own_case.find(text)) >= 40


def test_own_case_detector_gives_way_to_an_emergency():
    from rasa.shared.nlu.training_data.message import Message

    from components.own_case_detector import OwnCaseDetector

    patterns = [[name, regex] for name, regexes in load_patterns(OWN_CASE_FILE, OWN_CASE_PREFIX).items() for regex in regexes]
    detector = OwnCaseDetector(model_storage=None, resource=None, patterns=patterns)
    faq = {"name": "faq", "confidence": 0.97}
    emergency = {"name": "report_emergency", "confidence": 1.0}
    question = Message(data={"text": "I'm pregnant, is dry needling safe for me?", "intent": faq, "intent_ranking": [faq]})
    urgent = Message(data={"text": "I'm pregnant and can't feel my legs, is it safe for me?", "intent": emergency,
                           "intent_ranking": [emergency]})
    detector.process([question, urgent])
    assert question.get("intent") == {"name": "ask_personal_advice", "confidence": 1.0}
    assert urgent.get("intent") == emergency
