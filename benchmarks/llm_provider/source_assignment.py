"""A source-based essay assignment of the kind schools set, for the cost benchmark.

Upper-secondary students read a source text of about 900 words (a feature article on a city's
car-free centre; the city, its people and its figures are invented for the task, as exam boards
do, so that no student knows more about it than the source says) and write a 500-600 word
evaluative essay. The teacher marks with a full analytic scheme: four criteria, each with level
descriptors. This is what the model is given before the essays in every comparison, and what a
provider can cache.

The students' essays are built deterministically: each draws, in a seeded order, on a pool of
sentences that respond to the source (claims, evidence, counter-arguments, judgements), in
paragraphs, until it reaches its length. They differ in which points they make and in what
order, not in quality; the benchmark's fake judge decides by the student number anyway.
"""

from __future__ import annotations

import random

TITLE = "Car-free city centres: the Halvorsund experiment"

SOURCE_TEXT = """\
The Quiet Streets of Halvorsund

Three years ago the city council of Halvorsund, a port city of about 180,000 people, voted by a
narrow margin to close its historic centre to private cars. The zone is small, roughly one and a
half square kilometres inside the old harbour walls, but it holds the main shopping streets, the
cathedral, two secondary schools, the central bus station and about 14,000 residents. Buses,
taxis, bicycles, emergency vehicles and registered delivery vans may still enter. Residents with
a disability permit may drive to their homes. Everyone else parks outside the walls or comes by
public transport.

The council gave three reasons for the change. The first was air quality. A monitoring station
on Market Street had recorded nitrogen dioxide above the national limit on more than forty days
a year, and the city's public health office linked the pollution to higher rates of asthma
among children in the centre. The second was safety: in the five years before the closure, the
narrow streets had seen an average of sixty collisions a year involving pedestrians or cyclists.
The third was what the council called "giving the streets back": turning space used for parking
into space for people.

The results after three years are mixed, and both sides of the argument can point to figures
that support them. Nitrogen dioxide on Market Street has fallen by about a third and has not
passed the national limit since the first year. Collisions involving pedestrians and cyclists
fell to nineteen in the most recent year. Bus journeys through the centre are on average six
minutes faster at rush hour, because buses no longer queue behind cars, and the number of bus
passengers has risen by fourteen per cent. About 3,000 square metres of former parking space
have become pavement cafes, playgrounds and planted areas.

Not everyone is convinced that these changes are all due to the ban. Air quality improved in
many European cities over the same period as older vehicles were replaced, and Halvorsund's
figures outside the zone also improved, if more slowly. The bus company added new routes in the
same year, which may explain some of the growth in passengers. Dr Ingrid Solberg, a transport
researcher at the regional university, says the city "has done something useful, but it has not
run a controlled experiment, and anyone who claims to know exactly what the ban achieved is
overstating the evidence".

The effect on business is the most disputed question. The city's own survey found that the
number of people walking along the main shopping street on a Saturday rose by a fifth.
Restaurants and cafes have done well; several new ones have opened. Some shopkeepers tell a
different story. Tor Eriksen, who has run a hardware shop near the cathedral for twenty-six
years, says his takings have fallen by a quarter. "People don't carry a bag of cement onto a
bus," he says. "My customers are tradespeople and older people from the villages, and they now
go to the retail park by the motorway." Two furniture shops in the zone have closed; their
owners blame the ban, while the council points out that furniture shops have closed in other
town centres too.

Residents are also divided. A survey by the local newspaper found that 58 per cent of people
living inside the zone support the ban, compared with 41 per cent of those living in the rest
of the city. Parents of young children and older people who walk to the shops were the
strongest supporters. Some residents who need to drive for work, such as nurses on night
shifts, say that parking outside the walls and walking home late at night makes them feel
unsafe. People with a disability permit report that the system works, but several say the
application was slow and that permits are not given to those whose conditions come and go.

Deliveries have needed careful planning. Vans may enter only before eleven in the morning, and
the council built a small depot outside the walls where parcels are transferred to electric
cargo bikes. The scheme now handles about a third of parcels for the zone. Shop owners say the
morning window suits food shops but not businesses that receive goods throughout the day.

The money matters too. The council lost about four million kroner a year in parking fees and
spent around twenty million kroner on paving, planting and new bus shelters. Supporters argue
that lower health costs and busier cafes will repay this over time; critics argue the same
money could have bought cleaner buses for the whole city, which would have reduced pollution in
every neighbourhood rather than in one.

Other cities are watching. Some, like Halvorsund, chose a full ban in a small area. Others have
tried softer measures: charging cars to enter the centre, closing streets only at weekends, or
removing parking gradually so that people change their habits over several years. Each approach
has its defenders, and the evidence from any single city is hard to separate from everything
else that changed at the same time.

The council will vote next spring on whether to make the ban permanent and whether to extend it
to the neighbourhood of Nordhavn, just outside the walls, where 9,000 people live and where the
main road to the ferry terminal runs. The mayor, Kari Lunde, says the first three years show
that "a city centre can be a place to live, not just a place to drive through". The opposition
leader, Martin Dahl, replies that "a policy that works for people who live in the centre and
hurts people who need to come into it is not yet a policy for the whole city".
"""

TASK = """\
Read the source text "The Quiet Streets of Halvorsund" carefully.

Halvorsund's council must decide next spring whether to make its car ban permanent and whether
to extend it to Nordhavn. Write an evaluative essay of 500-600 words in which you answer the
question: "Should Halvorsund make its car-free centre permanent and extend it?"

In your essay you should:
- take a clear, reasoned position (which may be a qualified one, for example "yes, but with
  changes");
- use evidence from the source to support your points, explaining what the evidence shows and
  what it does not show;
- consider the views of at least two different groups affected by the ban;
- weigh the strongest argument against your position and respond to it;
- reach a conclusion that follows from your argument.

Write in your own words; you may quote short phrases from the source. Do not invent facts about
Halvorsund that are not in the source. Level: upper-secondary, final year (ages 17-18)."""

MARKING_SCHEME = """\
Analytic marking scheme. Each essay is judged on four criteria. For each criterion, decide which
level description fits the essay best; when an essay shows features of two levels, choose the
level that fits most of the essay. Criteria A and B together carry twice the weight of C and D:
an essay that argues well from the source with some errors of expression is better than a
fluent essay that says little.

Criterion A - Argument and position (weight 2)
Level 5: A clear, precise and consistently maintained position, qualified where the evidence
requires it. Reasons are developed in logical steps, and the strongest counter-argument is
stated fairly and answered convincingly. The conclusion follows from the argument.
Level 4: A clear position maintained throughout. Reasons are developed and linked. A relevant
counter-argument is considered and answered, though the answer may be partial. The conclusion
follows from the argument.
Level 3: A position is stated but may waver or be left implicit in places. Reasons are relevant
but some are asserted rather than developed. A counter-argument is mentioned but answered only
briefly or not at all. The conclusion mostly repeats earlier points.
Level 2: The position is unclear or changes without explanation. Reasons are listed rather than
developed, and some are not relevant to the question. No real engagement with another view.
Level 1: No identifiable position, or the essay does not address the question asked.

Criterion B - Use of the source (weight 2)
Level 5: Selects the most relevant evidence from the source and uses it accurately and
economically. Evaluates the evidence: distinguishes what the figures show from what they do not
(for example, other causes of change), and weighs competing evidence. Represents the views of
different groups fairly and precisely.
Level 4: Uses relevant evidence from the source accurately and explains how it supports the
argument. Shows some awareness of the limits of the evidence. Refers accurately to the views of
at least two groups.
Level 3: Uses some relevant evidence, mostly accurately, but tends to report it rather than
explain or evaluate it. Refers to the views of different groups in general terms.
Level 2: Refers to the source only occasionally or in general terms; some references are
inaccurate or misread. Relies mainly on the student's own opinion or on invented facts.
Level 1: Little or no reference to the source, or the source is seriously misrepresented.

Criterion C - Organisation and coherence (weight 1)
Level 5: The essay is organised so that each paragraph advances the argument. The introduction
frames the question and the position; transitions show the logical relationship between ideas
(contrast, concession, consequence); the conclusion draws the argument together.
Level 4: Clear paragraphs, each with a main idea, in a logical order. Transitions are mostly
effective. A recognisable introduction and conclusion.
Level 3: Paragraphing is present but some paragraphs mix ideas or repeat each other. Linking is
mechanical ("firstly", "secondly") rather than logical. The structure can be followed with some
effort.
Level 2: Weak or inconsistent paragraphing; ideas are presented in a list or in an order that is
hard to follow.
Level 1: No discernible organisation.

Criterion D - Language and accuracy (weight 1)
Level 5: Precise, varied vocabulary (including the vocabulary of argument and evaluation) and a
range of sentence structures used for effect. A consistently appropriate formal register. Very
few errors, none of which affect meaning.
Level 4: Generally precise vocabulary and some variety of sentence structure. Appropriate
register. Occasional errors that do not affect meaning.
Level 3: Adequate vocabulary with some repetition or imprecision; limited variety of sentence
structure. Register mostly appropriate. Errors are noticeable but meaning is clear.
Level 2: Limited vocabulary and simple or awkward sentences. Lapses in register. Frequent errors
that sometimes obscure meaning.
Level 1: Errors frequently obscure meaning.

When comparing two essays, decide which one reaches the higher levels overall, giving criteria A
and B twice the weight of C and D. Length is not a criterion: an essay is not better because it
is longer, only if the additional material strengthens its argument or its use of the source."""

# What students write in response to the source: positions, evidence from it, other groups'
# views, counter-arguments and judgements. Each essay is drawn from these.
ESSAY_SENTENCES = (
    "Halvorsund's council should make the ban permanent, but it should not extend it to "
    "Nordhavn until it has solved the problems the first three years revealed.",
    "The strongest evidence for the ban is the fall in nitrogen dioxide on Market Street, which "
    "has dropped by about a third and has stayed below the national limit since the first year.",
    "However, the source warns that air quality improved across many European cities over the "
    "same period, so not all of this improvement can be credited to the ban.",
    "Dr Solberg's comment that the city 'has not run a controlled experiment' is a reminder that "
    "the figures show a change, not necessarily its cause.",
    "Even so, the improvement inside the walls was faster than outside them, which suggests that "
    "removing cars made a real difference.",
    "Safety is perhaps the clearest success: collisions involving pedestrians and cyclists fell "
    "from an average of sixty a year to nineteen.",
    "For parents of young children, streets where a child can walk to school without crossing "
    "traffic are worth a great deal.",
    "Buses now cross the centre about six minutes faster at rush hour, and passenger numbers have "
    "risen by fourteen per cent.",
    "Yet the bus company added new routes in the same year, so some of those passengers might "
    "have come anyway.",
    "The effect on business is harder to judge, because the source gives evidence on both sides.",
    "Saturday footfall on the main shopping street rose by a fifth, and new cafes and restaurants "
    "have opened.",
    "On the other hand, Tor Eriksen's hardware shop has lost a quarter of its takings, because "
    "his customers cannot carry heavy goods onto a bus.",
    "This shows that the ban helps businesses that depend on people strolling and browsing, "
    "while it hurts those whose customers need to carry heavy goods.",
    "The closure of two furniture shops is often blamed on the ban, but the council points out "
    "that such shops have closed in other town centres too.",
    "Residents inside the zone are more positive than people in the rest of the city, 58 per "
    "cent against 41 per cent, which is not surprising since they gain the most.",
    "The night-shift nurses who feel unsafe walking home from car parks outside the walls raise "
    "a serious problem that the council has not yet answered.",
    "A better-lit route from the car parks, or a night bus, would cost far less than the paving "
    "and planting the council has already paid for.",
    "The disability permits seem to work for most people, but the council should make the "
    "application faster and include people whose conditions come and go.",
    "The delivery scheme is a sensible compromise, since the cargo-bike depot already handles a "
    "third of the parcels for the zone.",
    "Still, a delivery window that closes at eleven suits food shops far better than businesses "
    "that receive goods throughout the day.",
    "The cost is also worth weighing: the council lost four million kroner a year in parking "
    "fees and spent twenty million on the changes.",
    "Critics are right that cleaner buses for the whole city would have reduced pollution in "
    "every neighbourhood, not just in one.",
    "But the ban did more than reduce pollution; it turned 3,000 square metres of parking into "
    "places where people meet, play and sit outside.",
    "Extending the ban to Nordhavn is a different question, because the main road to the ferry "
    "terminal runs through it.",
    "Closing that road would push ferry traffic into other neighbourhoods, so the problem would "
    "be moved rather than solved.",
    "Martin Dahl's point that the policy helps people who live in the centre and hurts those who "
    "need to come into it is the strongest argument against the ban.",
    "It deserves a serious answer, and the answer is to fix the ban's weaknesses rather than to "
    "abandon what it has achieved.",
    "The mayor's claim that the centre has become 'a place to live, not just a place to drive "
    "through' is supported by the new playgrounds and the fall in collisions.",
    "Softer measures, such as charging cars to enter or removing parking gradually, might win "
    "more support in Nordhavn than a sudden ban.",
    "In conclusion, the evidence from Halvorsund is mixed but mostly positive, and the council "
    "should keep the ban while helping the groups it has harmed.",
    "A permanent ban should come with longer delivery windows, safer routes from the car parks "
    "and a quicker permit system.",
    "Only when those changes have been tested should the council decide whether Nordhavn is "
    "ready for the same policy.",
)


def source_essay(number: int, words: int = 550) -> str:
    """Student essay `number`: about `words` words of the response sentences, in a seeded order,
    in paragraphs of four to six sentences (a sentence may recur once the pool is used up)."""
    rng = random.Random(f"halvorsund-{number}")
    pool: list[str] = []
    paragraphs: list[list[str]] = [[]]
    length = rng.randint(4, 6)
    count = 0
    while count < words:
        if not pool:
            pool = list(ESSAY_SENTENCES)
            rng.shuffle(pool)
        if len(paragraphs[-1]) == length:
            paragraphs.append([])
            length = rng.randint(4, 6)
        sentence = pool.pop()
        paragraphs[-1].append(sentence)
        count += len(sentence.split())
    return "\n\n".join(" ".join(paragraph) for paragraph in paragraphs)


def instructions() -> str:
    """The instructions the students were given: the task and the source text."""
    return f"{TASK}\n\nSource text:\n\n{SOURCE_TEXT}"
