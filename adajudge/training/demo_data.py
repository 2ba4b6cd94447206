"""Preference pairs with a preference anyone can check: a right answer is chosen over a wrong one.

Generated in code, deterministically from a seed, so `adajudge demo` needs no download. Each prompt is
asked once (no prompt is shared between the training and held-out pairs). Chosen and rejected answers have
the same wording and differ only in the fact or the number, so only correctness separates them.
"""
import random

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "Japan": "Tokyo", "China": "Beijing", "Russia": "Moscow", "Egypt": "Cairo", "Greece": "Athens",
    "Canada": "Ottawa", "Australia": "Canberra", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki",
    "Denmark": "Copenhagen", "Poland": "Warsaw", "Austria": "Vienna", "Ireland": "Dublin", "Kenya": "Nairobi",
    "Argentina": "Buenos Aires", "Peru": "Lima", "Chile": "Santiago", "Mexico": "Mexico City", "Cuba": "Havana",
    "Thailand": "Bangkok", "Vietnam": "Hanoi", "India": "New Delhi", "Iran": "Tehran", "Turkey": "Ankara",
    "Belgium": "Brussels", "Netherlands": "Amsterdam", "Hungary": "Budapest", "Czechia": "Prague",
    "South Korea": "Seoul", "Indonesia": "Jakarta", "Philippines": "Manila", "Colombia": "Bogota",
    "Venezuela": "Caracas", "Ukraine": "Kyiv",
}

# (question, right answer, wrong answers, answer template)
FACTS = [
    ("What color is the sky on a clear day?", "blue", ["green", "red", "purple"], "The sky is {}."),
    ("What color is grass?", "green", ["blue", "red", "white"], "Grass is {}."),
    ("What color is snow?", "white", ["black", "green", "orange"], "Snow is {}."),
    ("How many legs does a spider have?", "eight", ["six", "four", "ten"], "A spider has {} legs."),
    ("How many legs does a dog have?", "four", ["three", "six", "two"], "A dog has {} legs."),
    ("How many days are in a week?", "seven", ["five", "six", "nine"], "A week has {} days."),
    ("How many months are in a year?", "twelve", ["ten", "eleven", "fourteen"], "A year has {} months."),
    ("How many hours are in a day?", "24", ["12", "20", "30"], "A day has {} hours."),
    ("What is the largest planet in the solar system?", "Jupiter", ["Mars", "Mercury", "Venus"], "The largest planet is {}."),
    ("Which planet do we live on?", "Earth", ["Mars", "Saturn", "Neptune"], "We live on {}."),
    ("What do bees make?", "honey", ["milk", "silk", "wool"], "Bees make {}."),
    ("What is frozen water called?", "ice", ["steam", "sand", "glass"], "Frozen water is called {}."),
    ("Which animal is known as the king of the jungle?", "the lion", ["the mouse", "the rabbit", "the sheep"],
     "The king of the jungle is {}."),
    ("What is the opposite of hot?", "cold", ["warm", "loud", "tall"], "The opposite of hot is {}."),
    ("What is the opposite of up?", "down", ["left", "over", "high"], "The opposite of up is {}."),
    ("What is the opposite of day?", "night", ["noon", "morning", "week"], "The opposite of day is {}."),
    ("Which day comes after Monday?", "Tuesday", ["Sunday", "Friday", "Thursday"], "The day after Monday is {}."),
    ("Which day comes after Friday?", "Saturday", ["Monday", "Wednesday", "Tuesday"], "The day after Friday is {}."),
    ("Which month comes after January?", "February", ["March", "June", "October"], "The month after January is {}."),
    ("Which month comes after November?", "December", ["April", "July", "September"], "The month after November is {}."),
    ("At what temperature does water boil at sea level, in Celsius?", "100", ["50", "10", "250"],
     "Water boils at {} degrees Celsius."),
    ("What gas do people need to breathe?", "oxygen", ["helium", "neon", "argon"], "People need {} to breathe."),
    ("What is the closest star to Earth?", "the Sun", ["the Moon", "Mars", "Jupiter"], "The closest star to Earth is {}."),
    ("What do cows drink?", "water", ["milk", "oil", "juice"], "Cows drink {}."),
    ("How many sides does a triangle have?", "three", ["four", "five", "six"], "A triangle has {} sides."),
    ("How many sides does a square have?", "four", ["three", "five", "eight"], "A square has {} sides."),
    ("What is the first letter of the English alphabet?", "A", ["Z", "M", "Q"], "The first letter is {}."),
    ("Which ocean is the largest?", "the Pacific Ocean", ["the Arctic Ocean", "the Indian Ocean", "the Baltic Sea"],
     "The largest ocean is {}."),
    ("What does a thermometer measure?", "temperature", ["weight", "distance", "time"], "A thermometer measures {}."),
    ("Which animal barks?", "a dog", ["a cat", "a fish", "a cow"], "The animal that barks is {}."),
]


def _arithmetic(rng: random.Random) -> dict:
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        right = a * b
    else:
        a, b = rng.randint(10, 99), rng.randint(1, 99)
        if op == "-" and b > a:
            a, b = b, a
        right = a + b if op == "+" else a - b
    wrong = right + rng.choice([-10, -2, -1, 1, 2, 10])
    prompt = f"What is {a} {op} {b}?"
    template = rng.choice(["{a} {op} {b} = {c}.", "The answer is {c}.", "{c}"])
    return {
        "prompt": prompt,
        "chosen": template.format(a=a, op=op, b=b, c=right),
        "rejected": template.format(a=a, op=op, b=b, c=wrong),
        "kind": "arithmetic",
    }


def _comparison(rng: random.Random, a: int, b: int) -> dict:
    larger, smaller = max(a, b), min(a, b)
    return {
        "prompt": f"Which number is larger, {a} or {b}?",
        "chosen": f"{larger} is larger.",
        "rejected": f"{smaller} is larger.",
        "kind": "comparison",
    }


def make_demo_pairs(num_arithmetic: int = 160, num_comparisons: int = 60, *, seed: int = 0) -> list[dict]:
    """The demo's preference pairs: `{prompt, chosen, rejected, kind}` with `kind` in
    {"arithmetic", "comparison", "capital", "fact"}; every capital and fact question once, then
    `num_arithmetic` arithmetic and `num_comparisons` number-comparison questions; shuffled by `seed`.

    The default gives 290 pairs with unique prompts.
    """
    rng = random.Random(seed)
    pairs = []
    countries = sorted(CAPITALS)
    for country in countries:
        wrong = CAPITALS[rng.choice([c for c in countries if c != country])]
        template = rng.choice(["The capital of {} is {}.", "It is {1}.", "{1}"])
        pairs.append({
            "prompt": f"What is the capital of {country}?",
            "chosen": template.format(country, CAPITALS[country]),
            "rejected": template.format(country, wrong),
            "kind": "capital",
        })
    for question, right, wrongs, template in FACTS:
        pairs.append({
            "prompt": question,
            "chosen": template.format(right),
            "rejected": template.format(rng.choice(wrongs)),
            "kind": "fact",
        })
    seen = {pair["prompt"] for pair in pairs}
    while len(pairs) < len(countries) + len(FACTS) + num_arithmetic:
        pair = _arithmetic(rng)
        if pair["prompt"] not in seen:
            seen.add(pair["prompt"])
            pairs.append(pair)
    while len(pairs) < len(countries) + len(FACTS) + num_arithmetic + num_comparisons:
        a, b = rng.sample(range(1, 1000), 2)
        pair = _comparison(rng, a, b)
        if pair["prompt"] not in seen:
            seen.add(pair["prompt"])
            pairs.append(pair)
    rng.shuffle(pairs)
    return pairs
