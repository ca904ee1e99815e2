"""Writes ``router_prompts.jsonl``: the labelled prompt set of ``bench/router.py`` (kept in the repo).

Four domains (code, math, writing, general), 130 prompts each, from hand-written templates and
fillers with a fixed seed; the prompts of about 30 % of each domain's templates are held out (``split: test``). Some templates
deliberately cross domains (a poem about prime numbers is writing; a function that sums a list is
code; the history of algebra is general) so keyword matching alone cannot score well.

    python bench/data/make_router_prompts.py   # rewrites bench/data/router_prompts.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path

PER_DOMAIN = 130
TEST_SHARE = 0.3

LANGS = ["Python", "JavaScript", "TypeScript", "Go", "Rust", "Java", "C++", "Bash", "SQL", "Kotlin"]
TASKS = [
    "reverses a linked list",
    "parses a CSV file into a list of dicts",
    "debounces a function call",
    "checks whether a string is a palindrome",
    "merges two sorted arrays",
    "reads a JSON config file",
    "retries an HTTP request with exponential backoff",
    "finds duplicate files in a directory",
    "implements an LRU cache",
    "validates an email address",
    "flattens a nested list",
    "counts word frequencies in a text file",
    "sums the values of a list",
    "computes a moving average",
    "serialises a tree to a string",
    "converts Celsius to Fahrenheit",
    "paginates database results",
    "uploads a file to S3",
    "deduplicates rows by key",
    "sorts records by date",
]
ERRORS = [
    "TypeError: 'NoneType' object is not subscriptable",
    "IndexError: list index out of range",
    "segmentation fault (core dumped)",
    "undefined is not a function",
    "ModuleNotFoundError: No module named 'yaml'",
    "NullPointerException",
    "borrow of moved value",
    "SyntaxError: unexpected EOF while parsing",
    "deadlock detected",
    "KeyError: 'id'",
    "ECONNREFUSED 127.0.0.1:5432",
    "merge conflict in main.py",
]
CODE = [
    "Write a {lang} function that {task}.",
    "How do I write code in {lang} that {task}?",
    "Can you show me a {lang} snippet that {task}?",
    "My {lang} program crashes with `{error}`. How do I fix it?",
    "Explain this error I get in {lang}: {error}",
    "Refactor my {lang} class so it {task} without global state.",
    "What is the time complexity of a function that {task}?",
    "Write unit tests for a {lang} function that {task}.",
    "Review this {lang} code: def f(x): return [i for i in x if i]",
    "How do I use async/await in {lang}?",
    "What's the difference between a list and a tuple in Python?",
    "Write a SQL query that joins orders and customers and counts orders per customer.",
    "How do I squash the last three commits in git?",
    "Write a regex that matches ISO dates like 2024-05-01.",
    "Write a Dockerfile for a {lang} web service.",
    "Why does my {lang} loop run forever when it {task}?",
    "Implement binary search in {lang}.",
    "How can I profile a slow {lang} script?",
    "Convert this bash loop to {lang}: for f in *.txt; do wc -l $f; done",
    "Set up a GitHub Actions workflow that runs pytest.",
    "How do I make a REST API endpoint in {lang} that {task}?",
    "Fix the bug: my recursive {lang} function that {task} overflows the stack.",
    "Write a shell one-liner that finds the 10 largest files.",
    "How do I mock a database call in a {lang} unit test?",
]
MATH = [
    "What is {a} times {b}?",
    "Compute {a} + {b} - {c}.",
    "Solve for x: {a}x + {b} = {c}.",
    "What is {p}% of {a}?",
    "A train travels {a} km in {b} hours. What is its average speed?",
    "If I buy {c} apples at {b} cents each, how much do I pay?",
    "What is the derivative of x^{b} + {a}x?",
    "Integrate {a}x^2 from 0 to {b}.",
    "Is {a} a prime number?",
    "Find the greatest common divisor of {a} and {b}.",
    "What is the probability of rolling two sixes with two dice?",
    "Simplify the fraction {a}/{c}.",
    "The sum of two numbers is {a} and their difference is {b}. Find the numbers.",
    "What is the area of a circle with radius {b}?",
    "A rectangle is {a} m by {b} m. What is its perimeter?",
    "Factor x^2 + {b}x + {c}.",
    "What is the square root of {sq}?",
    "Calculate {a} divided by {b} to two decimals.",
    "How many ways can {b} people sit in a row?",
    "Expand (x + {b})^2.",
    "What is log base 2 of {pow}?",
    "If a shirt costs ${a} after a {p}% discount, what was the original price?",
    "Convert {a} minutes into hours and minutes.",
    "A recipe needs {b} eggs for {c} people. How many eggs for {a} people?",
    "Solve the system: x + y = {a}, x - y = {b}.",
    "What is the mean of {a}, {b} and {c}?",
    "Prove that the square root of 2 is irrational.",
    "What is {b} factorial?",
    "Find the hypotenuse of a right triangle with legs {b} and {c}.",
]
TOPICS = [
    "autumn in the mountains",
    "a lighthouse keeper",
    "first love",
    "the ocean at night",
    "a lost dog finding home",
    "city rain",
    "a robot learning to paint",
    "my grandmother's kitchen",
    "the last day of summer",
    "prime numbers",
    "a startup launch",
    "friendship",
    "a dragon who is afraid of fire",
    "moving to a new country",
    "the moon landing",
]
WRITING = [
    "Write a poem about {topic}.",
    "Write a short story about {topic}.",
    "Write a haiku about {topic}.",
    "Draft a polite email to my landlord asking to fix the heating.",
    "Write a cover letter for a {job} position.",
    "Rewrite this paragraph to sound more formal: hey guys, the meeting got moved to friday.",
    "Give me a catchy slogan for a {product}.",
    "Write a product description for a {product}.",
    "Write a wedding toast for my best friend.",
    "Proofread this sentence: their going to the park tomorow.",
    "Write the opening paragraph of a mystery novel set in {place}.",
    "Write a limerick about {topic}.",
    "Help me write a thank-you note to my teacher.",
    "Write a blog post introduction about {topic}.",
    "Write a persuasive essay outline on remote work.",
    "Make this text shorter and punchier: our product helps teams collaborate better by providing many features.",
    "Write dialogue between two characters arguing about {topic}.",
    "Write a LinkedIn post announcing my new {job} job.",
    "Write song lyrics about {topic}.",
    "Write a bedtime story for a five-year-old about {topic}.",
    "Suggest a better title for my essay about {topic}.",
    "Write a tweet announcing the launch of our {product}.",
    "Translate the tone of this message to be friendlier: Submit the report by 5pm.",
    "Write a eulogy for a beloved family cat.",
    "Write a sonnet about {topic}.",
]
JOBS = [
    "data analyst",
    "nurse",
    "software engineer",
    "graphic designer",
    "teacher",
    "project manager",
    "chef",
]
PRODUCTS = [
    "reusable water bottle",
    "meditation app",
    "electric bike",
    "coffee subscription",
    "smart thermostat",
    "vegan bakery",
]
PLACES = [
    "Venice",
    "a snowed-in hotel",
    "1920s Shanghai",
    "a space station",
    "a small fishing village",
    "Cairo",
]
GENERAL = [
    "What is the capital of {country}?",
    "What should I pack for a week-long trip to {country}?",
    "Who was {person}?",
    "Why is the sky blue?",
    "How do vaccines work?",
    "What are some tips for better sleep?",
    "Recommend a few books like {book}.",
    "How do I get red wine out of a carpet?",
    "What's a good vegetarian dinner idea?",
    "Explain how {thing} works in simple terms.",
    "What is the history of {history}?",
    "How long should I boil an egg?",
    "What are the health benefits of {food}?",
    "How do I start running as a beginner?",
    "What causes earthquakes?",
    "Should I lease or buy a car?",
    "What's the best way to learn a new language?",
    "How do I care for a {plant}?",
    "Tell me a fun fact about {animal}.",
    "What time zone is {country} in?",
    "How does the stock market work?",
    "What is the difference between weather and climate?",
    "How can I be more productive working from home?",
    "What are good exercises for lower back pain?",
    "How do I prepare for a job interview?",
    "What language do people speak in {country}?",
    "Why do cats purr?",
    "How do I plan a birthday party for a ten-year-old?",
    "What should I see in {country} on a first visit?",
    "How does a refrigerator keep food cold?",
]
COUNTRIES = [
    "Japan",
    "Portugal",
    "Kenya",
    "Peru",
    "Norway",
    "Vietnam",
    "Canada",
    "Morocco",
    "Iceland",
    "Chile",
]
PEOPLE = [
    "Marie Curie",
    "Nelson Mandela",
    "Ada Lovelace",
    "Genghis Khan",
    "Frida Kahlo",
    "Leonardo da Vinci",
    "Alan Turing",
]
BOOKS = ["Dune", "Pride and Prejudice", "The Hobbit", "Sapiens", "1984", "The Martian"]
THINGS = [
    "the internet",
    "a microwave oven",
    "photosynthesis",
    "an airplane wing",
    "GPS",
    "the immune system",
    "a solar panel",
]
HISTORIES = [
    "algebra",
    "the Roman Empire",
    "chess",
    "the printing press",
    "coffee",
    "the Olympic games",
    "jazz",
]
FOODS = ["green tea", "oatmeal", "blueberries", "dark chocolate", "spinach", "salmon"]
PLANTS = ["fiddle leaf fig", "snake plant", "bonsai tree", "orchid", "tomato plant"]
ANIMALS = ["octopuses", "elephants", "penguins", "honeybees", "owls", "dolphins"]


def _fill(template: str, rng: random.Random) -> str:
    a, b, c = rng.randint(11, 999), rng.randint(2, 12), rng.randint(3, 60)
    return template.format(
        lang=rng.choice(LANGS),
        task=rng.choice(TASKS),
        error=rng.choice(ERRORS),
        a=a,
        b=b,
        c=c,
        p=rng.choice([5, 10, 15, 20, 25, 30, 40]),
        sq=rng.choice([49, 144, 169, 225, 361, 1024]),
        pow=rng.choice([8, 64, 256, 1024]),
        topic=rng.choice(TOPICS),
        job=rng.choice(JOBS),
        product=rng.choice(PRODUCTS),
        place=rng.choice(PLACES),
        country=rng.choice(COUNTRIES),
        person=rng.choice(PEOPLE),
        book=rng.choice(BOOKS),
        thing=rng.choice(THINGS),
        history=rng.choice(HISTORIES),
        food=rng.choice(FOODS),
        plant=rng.choice(PLANTS),
        animal=rng.choice(ANIMALS),
    )


def build_rows(seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for domain, templates in (("code", CODE), ("math", MATH), ("writing", WRITING), ("general", GENERAL)):
        # Whole templates are held out, so the test split measures prompts phrased unlike any training
        # prompt, not new fillers in a seen sentence.
        held_out = set(rng.sample(range(len(templates)), round(len(templates) * TEST_SHARE)))
        seen: set[str] = set()
        attempts = 0
        while len(seen) < PER_DOMAIN and attempts < 100_000:
            attempts += 1
            index = attempts % len(templates)  # cycle so every template is represented before repeats
            text = _fill(templates[index], rng)
            if text not in seen:
                seen.add(text)
                rows.append(
                    {"prompt": text, "expert": domain, "split": "test" if index in held_out else "train"}
                )
    return rows


def main() -> None:
    path = Path(__file__).with_name("router_prompts.jsonl")
    rows = build_rows()
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} prompts to {path}")


if __name__ == "__main__":
    main()
