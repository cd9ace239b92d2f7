"""Reads the training data, with the FAQ retrieval intents known to the rules.

Rasa learns the retrieval intents (`faq`, `not_covered`) from the NLU data and
adds them to the domain only after reading rules and stories. So a project
must either list them in domain.yml (and Rasa warns "duplicated intents"
when it adds them again) or have its rules warned about as using intents
"not part of the domain". Reading rules with the retrieval intents already
known avoids both, so `rasa data validate` reports only real problems.
"""

from typing import Optional

from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.structures import StoryGraph
from rasa.shared.importers import utils
from rasa.shared.importers.rasa import RasaFileImporter


class RetrievalIntentImporter(RasaFileImporter):
    def _domain_with_retrieval_intents(self) -> Domain:
        retrieval_intents = sorted(self.get_nlu_data().retrieval_intents)
        return self.get_domain().merge(Domain.from_dict({"intents": retrieval_intents}))

    def get_stories(self, exclusion_percentage: Optional[int] = None) -> StoryGraph:
        return utils.story_graph_from_paths(
            self._story_files, self._domain_with_retrieval_intents(), exclusion_percentage
        )

    def get_conversation_tests(self) -> StoryGraph:
        return utils.story_graph_from_paths(
            self._conversation_test_files, self._domain_with_retrieval_intents()
        )
