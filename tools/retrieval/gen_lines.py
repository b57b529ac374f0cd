#!/usr/bin/env python3
"""Synthetic LongEval line-retrieval documents, for training and held-out evaluation.

Each record has the fields of LongEval's N_lines.jsonl (../shared/data/longeval_lines):

  prompt           the header, then num_lines lines "line <adjective>-<noun>: REGISTER_CONTENT is <N>",
                   then the question about one of them (LongEval's exact wording)
  correct_line     that line, with its newline
  expected_number  N of that line (int, 1..50000 as in LongEval)
  num_lines        int
  random_idx       [key, index of the line in the record]

The text is byte for byte that of LongEval's 200/400/600 files (whose question ends "I need the
number. " with a space; the 800/1000/1200 files drop that space and have some multi-word keys).
Those three files also carry token_size (a count of Llama-tokenizer tokens) and
prompt_length (-1); the 800/1000/1200 files do not, and `zipcache eval lines` needs neither, so
they are left out rather than filled with a count of some other tokenizer.

The word lists are our own (written below). Keys are unique within a document (LongEval's
occasionally repeat one, which makes the question ambiguous).

Reproducibility and the held-out split: document i of a run is drawn from its own generator,
random.Random("zipcache-lines/<split>/<seed>/<num_lines>/<i>") (a str seed is hashed with SHA-512),
so the same arguments give the same bytes on any platform, and the "train" and "test" splits
never share a generator whatever the seeds. (Python promises the same random() sequence across
versions but not the same randint/sample algorithms: keep the JSONL of any published number.)

    gen_lines.py --lines 200 --count 50 --split test --seed 0 -o lines_200.jsonl
"""
import argparse
import json
import random
import sys

HEADER = ("Below is a record of lines I want you to remember. Each line begins with 'line <line index>' "
          "and contains a '<REGISTER_CONTENT>' at the end of the line as a numerical value. For each line "
          "index, memorize its corresponding <REGISTER_CONTENT>. At the end of the record, I will ask you to "
          "retrieve the corresponding <REGISTER_CONTENT> of a certain line index. Now the record start:\n\n")
QUESTION = "\nNow the record is over. Tell me what is the <REGISTER_CONTENT> in line {key}? I need the number. "
MAX_NUMBER = 50000
SPLITS = ("train", "test")

ADJECTIVES = """
amber ancient angular arctic ardent arid ashen austere autumn balmy bashful bitter blazing bleak
blunt bold boreal brassy brisk brittle bronze burly calm candid carved cedar chalky cheerful chilly
civic clever cloudy coastal cobalt coral cosmic crafty crimson crisp curly dainty damp dapper dawn
deft dense dusky dusty eager early earthen elder elegant ember even fabled faint feral fervent fickle
fiery flinty floral foggy frosty frugal gentle giddy gilded glassy gleaming glossy golden grassy
gritty hasty hazel hearty hidden hollow humble icy idle indigo inky jade jagged jolly keen kindly
lanky lavish leafy lemon lively lofty loyal lucid lunar mellow merry misty modest mossy murky mythic
narrow nimble noble nutty oaken odd olive opal orderly pale patient pearly peppery placid plucky
polar portly prickly proud quaint quiet quirky radiant rapid rosy rowdy royal rugged rustic sandy
scarlet serene shady shaggy silent silky silver sleek sly smoky snowy solar sombre spare speckled
spry stark steady stormy sturdy sunny swift tangy tawny tender thorny tidal timid tranquil tufted
velvet vivid wary wavy wicked windy wintry witty woolly zesty
""".split()

NOUNS = """
acorn admiral anchor anvil apricot archer atlas badger ballad banner barley barrel basin beacon
beetle biscuit bishop bobcat bonnet boulder bramble bridge brook bucket buffalo cabin cactus canal
candle canyon captain caravan carrot castle cellar chapel cherry chimney cider cinder clover cobbler
comet compass copper cottage cricket crystal cypress dagger daisy delta dingo dolphin donkey dragon
drummer eagle easel elbow falcon ferret fiddle fjord forest fossil fountain gadget galley garden
garlic geyser glacier goblet gopher granite gravel griffin guitar hammock harbor harvest hazelnut
hedgehog helmet heron hilltop hornet iceberg island ivory jackal jasmine jigsaw juniper kayak kettle
kitten lagoon lantern lemur lettuce lizard locket lobster magnet mallard mango maple marble meadow
meteor mitten monsoon mortar muffin mustang nectar nomad nutmeg oasis orchard otter oyster paddle
pagoda panther parrot pebble pelican pepper pigeon pillow pilot pioneer plume pocket pony puffin
pumpkin quarry quill rabbit raccoon radish raven reef ribbon river rocket saddle salmon sapling
satchel scarab schooner sparrow spindle squirrel stallion summit teapot thimble thistle tiger
tortoise trumpet tulip turnip valley violin walnut walrus weasel whistle willow wizard zephyr
""".split()


def _check_lists():
    # Unique words without '-' or ':' keep every key unambiguous and the line grammar regular.
    for name, words in (("ADJECTIVES", ADJECTIVES), ("NOUNS", NOUNS)):
        assert len(set(words)) == len(words), name + " has a repeated word"
        assert all(w.isalpha() and w.islower() for w in words), name + " has a word that is not lowercase letters"


_check_lists()
MAX_LINES = len(ADJECTIVES) * len(NOUNS)


def line_text(key, number):
    return f"line {key}: REGISTER_CONTENT is <{number}>\n"


def document(rng, num_lines):
    """One record with num_lines unique keys drawn from rng (a random.Random)."""
    if not 1 <= num_lines <= MAX_LINES:
        raise ValueError(f"num_lines {num_lines} is outside [1, {MAX_LINES}]")
    # Sampling pair indices without replacement gives unique keys in O(num_lines).
    pairs = rng.sample(range(MAX_LINES), num_lines)
    keys = [f"{ADJECTIVES[p // len(NOUNS)]}-{NOUNS[p % len(NOUNS)]}" for p in pairs]
    numbers = [rng.randint(1, MAX_NUMBER) for _ in range(num_lines)]
    idx = rng.randrange(num_lines)
    lines = [line_text(k, n) for k, n in zip(keys, numbers)]
    return {
        "random_idx": [keys[idx], idx],
        "expected_number": numbers[idx],
        "num_lines": num_lines,
        "correct_line": lines[idx],
        "prompt": HEADER + "".join(lines) + QUESTION.format(key=keys[idx]),
    }


def doc_rng(split, seed, num_lines, i):
    """The generator of document i: distinct for every (split, seed, num_lines, i)."""
    if split not in SPLITS:
        raise ValueError(f"split '{split}' is not one of {SPLITS}")
    return random.Random(f"zipcache-lines/{split}/{seed}/{num_lines}/{i}")


def documents(split, seed, num_lines, count, first=0):
    """Documents first .. first+count-1 of a (split, seed, num_lines) stream."""
    return [document(doc_rng(split, seed, num_lines, i), num_lines) for i in range(first, first + count)]


def answer_text(record):
    """What the model is trained to say after the prompt: the number as the document writes it.
    `zipcache eval lines` scores the first number in the generated text."""
    return f"<{record['expected_number']}>"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, required=True, help="lines per document")
    ap.add_argument("--count", type=int, default=50, help="documents (default 50, as LongEval)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=SPLITS, default="test",
                    help="train or test: the two never share a document generator (default test)")
    ap.add_argument("-o", "--output", help="JSONL file (default stdout)")
    a = ap.parse_args(argv)
    if a.count < 1 or not 1 <= a.lines <= MAX_LINES:
        ap.error(f"--count must be >= 1 and --lines in [1, {MAX_LINES}]")
    out = open(a.output, "w", encoding="utf-8") if a.output else sys.stdout
    try:
        for rec in documents(a.split, a.seed, a.lines, a.count):
            out.write(json.dumps(rec) + "\n")
    finally:
        if a.output:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
