"""Prices, the budget's admission of samples, and the pilot's choice and projection."""

import asyncio

import pytest

from agent.config import Settings
from agent.runs import estimate as E
from agent.runs.cost import Caps, Meter, Price, PriceError, Tokens, find_price, first_attempt_ceiling, sample_ceiling

PRICE = Price(1.0, 4.0, "test")


def test_the_users_prices_win_and_go_together():
    price = find_price("gpt-4o-mini", None, 2.0, 8.0)
    assert (price.input_per_million, price.output_per_million, price.source) == (2.0, 8.0, "--price-input/--price-output")
    assert price.cost(1_000_000, 500_000) == pytest.approx(6.0)
    with pytest.raises(PriceError, match="go together"):
        find_price("gpt-4o-mini", None, 2.0, None)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "http://localhost:11434/v1", "http://10.0.0.5/v1",
                                 "http://gpu-box.local:8000/v1"])
def test_a_local_server_costs_nothing(url):
    price = find_price("anything", url)
    assert price.known and price.cost(10**6, 10**6) == 0.0
    assert "costs nothing" in price.source


def test_a_known_model_is_priced_from_the_dated_shipped_table():
    price = find_price("gpt-4o-mini", None)  # no --base-url: the provider is found from the model
    assert price.known and price.input_per_million > 0 and price.output_per_million > price.input_per_million
    assert price.source.startswith("genai-prices ") and "offline" in price.source
    assert price.dated is not None and price.dated[:2] == "20"  # an ISO date


def test_an_unknown_model_has_no_price_and_no_cost():
    price = find_price("my-own-finetune-7b", "https://llm.example.com/v1")
    assert not price.known and price.cost(1000, 1000) is None
    assert "--price-input" in price.source
    with pytest.raises(PriceError, match="--max-cost needs a price"):
        Meter(price, Caps(max_cost=1.0), Settings())


def test_a_sample_reservation_is_bounded_by_max_tokens_and_prompt():
    settings = Settings()
    record = {"question": "x" * 400, "options": {"A": "a"}, "answer": "a"}
    first = first_attempt_ceiling(settings, record)
    assert first.output == sum(settings.max_tokens[n] for n in ("extract", "map", "prune", "generate", "verify"))
    assert first.input > 5 * 100  # every request carries the record (400 characters: 100 tokens)
    assert sample_ceiling(settings, record).total > 2 * first.total
    smaller = first_attempt_ceiling(Settings(max_tokens_generate=100), record)
    assert first.output - smaller.output == settings.max_tokens_generate - 100


def run_samples(meter: Meter, spends: list[int], concurrency: int) -> tuple[list[int], int]:
    """Samples spending ``spends`` tokens each (all output), ``concurrency`` at a time, as the
    runner does: admitted before starting, reported when done. Returns the started ones and
    the most in flight at once."""
    started, in_flight, most = [], 0, 0
    queue = iter(enumerate(spends))

    async def worker():
        nonlocal in_flight, most
        for i, spend in queue:
            record = {"question": "q", "options": {}, "answer": "a"}
            if not await meter.admit(str(i), record):
                break
            started.append(i)
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.001 * (i % 3))
            in_flight -= 1
            await meter.finished({"id": str(i), "thread_id": f"t{i}", "usage": {"output_tokens": spend, "llm_calls": 1}})

    async def main():
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(main())
    return started, most


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_token_cap_stops_starting_samples_and_holds_within_its_bound(concurrency):
    settings = Settings(max_tokens_generate=200, max_tokens_extract=50, max_tokens_map=50, max_tokens_prune=50,
                        max_tokens_verify=50, max_pruned_paths=1, paths_per_pair=2)
    cap = 30_000
    meter = Meter(PRICE, Caps(max_tokens=cap), settings, concurrency)
    spends = [300 + 97 * (i % 7) for i in range(400)]  # far more than the cap allows
    started, most = run_samples(meter, spends, concurrency)
    assert meter.reached
    spent = meter.total.total
    assert spent == sum(spends[i] for i in started)
    report = meter.report([], len(spends) - len(started))
    assert spent <= cap + report["budget"]["overshoot_bound"]["tokens"]
    assert spent <= cap  # reservations of the largest sample seen hold these samples
    assert spent > cap * 0.8  # and the budget is used, not left idle
    assert report["budget"]["reached"] is True and report["spent"]["tokens"] == spent
    assert most <= concurrency


def test_a_cost_cap_counts_what_earlier_sessions_spent():
    meter = Meter(Price(10.0, 10.0, "test"), Caps(max_cost=0.05), Settings(), 1)
    earlier = [{"id": "a", "thread_id": "t", "usage": {"input_tokens": 3000, "output_tokens": 1000, "llm_calls": 4}}]
    meter.resume_from(earlier, {"input_tokens": 3000, "output_tokens": 1500, "llm_calls": 6})  # a dropped error row's calls
    assert meter.total == Tokens(3000, 1500) and meter.earlier_calls == 6
    started, _ = run_samples(meter, [1000] * 50, 1)
    assert meter.cost(meter.total) <= 0.05 and len(started) < 50 and meter.reached


def test_no_cap_admits_everything_and_times_each_sample():
    meter = Meter(PRICE, Caps(), Settings(), 2)
    started, _ = run_samples(meter, [100] * 20, 2)
    assert len(started) == 20 and not meter.reached
    assert set(meter.durations) == {str(i) for i in range(20)}
    assert "budget" not in meter.report([], 0)


# -- the pilot ---------------------------------------------------------------------------------
def population(n: int = 200) -> list[E.Profile]:
    matches = ["none", "none", "none", "exact", "close", "weak"]
    return [E.Profile(f"r{i}", 100 + i % 50, i % 5, matches[i % len(matches)]) for i in range(n)]


def cost_of(p: E.Profile) -> float:
    """Rejected at once when the answer maps to nothing; else several calls, varying."""
    return 800 + p.prompt_tokens if p.answer_match == "none" else 4000 + 3000 * (int(p.id[1:]) % 4)


def test_the_pilot_is_drawn_across_every_stratum_and_reproducibly():
    people = population()
    chosen = E.choose(people, 12, [], seed="s")
    assert len(chosen) == len(set(chosen)) == 12
    strata = {p.stratum for p in people if p.id in chosen}
    assert strata == {p.stratum for p in people}  # 12 records reach all 8 strata
    assert chosen == E.choose(people, 12, [], seed="s") and chosen != E.choose(people, 12, [], seed="t")
    more = E.choose(people, 20, chosen, seed="s")
    assert not set(more) & set(chosen) and len(more) == 20


def test_neyman_growth_goes_where_the_spread_is():
    people = population()
    taken = E.choose(people, 16, [], seed="s")
    spread = {k: (0.0 if k[0] == "none" else 3000.0) for k in E.strata(people)}
    more = E.choose(people, 40, taken, spread, seed="s")
    dear = sum(1 for p in people if p.id in more and p.answer_match != "none")
    assert dear >= 35  # the cheap, steady strata get (almost) none of the growth


def test_a_projection_is_exact_once_everything_is_observed_and_ranges_the_rest():
    people = population()
    truth = sum(map(cost_of, people))
    groups = E.strata(people)
    whole = E.stratified_total(groups, {p.id: cost_of(p) for p in people})
    assert whole.point == whole.low == whole.high == truth
    pilot = E.choose(people, 60, [], seed="s")
    part = E.stratified_total(groups, {p.id: cost_of(p) for p in people if p.id in pilot})
    assert part.low < part.point < part.high
    assert part.low <= truth <= part.high
    assert part.low >= sum(cost_of(p) for p in people if p.id in pilot)  # never below what is already spent


def test_project_reports_every_measure_and_cost_only_with_a_price():
    people = population(20)
    rows = {p.id: {"status": "accepted" if i % 2 else "rejected",
                   "usage": {"llm_calls": 3, "input_tokens": 1000, "output_tokens": 200}} for i, p in enumerate(people[:10])}
    found = E.project(people, rows, {p.id: 2.0 for p in people[:10]}, PRICE, 2).as_json()
    assert found["records"] == 20 and found["pilot"] == 10
    assert found["tokens"] == 24_000 and found["tokens_low"] <= 24_000 <= found["tokens_high"]
    assert found["cost_usd"] == pytest.approx(20 * (1000 * 1.0 + 200 * 4.0) / 1e6)
    assert found["wall_time_s"] == pytest.approx(20 * 2.0 / 2)
    assert 0 < found["accepted_share"] < 1
    unknown = E.project(people, rows, {}, Price(None, None, "unknown"), 2).as_json()
    assert unknown["cost_usd"] is None and unknown["wall_time_s"] is None


def test_the_default_pilot_cap_scales_with_the_input():
    assert E.default_cap(20) == 20 and E.default_cap(200) == 80 and E.default_cap(100_000) == 400


def test_a_pilot_of_one_record_per_stratum_still_has_a_range_and_one_record_has_no_upper_end():
    people = population(40)
    rows = {p.id: {"status": "rejected", "usage": {"llm_calls": 2, "input_tokens": cost_of(p), "output_tokens": 0}}
            for p in people if p.id in E.choose(people, 8, [], seed="s")}
    assert len({p.stratum for p in people if p.id in rows}) == len(rows)  # one record in each stratum
    found = E.project(people, rows, {}, PRICE, 1).as_json()
    assert found["tokens_low"] < found["tokens"] < found["tokens_high"]
    one = E.project(people, dict(list(rows.items())[:1]), {}, PRICE, 1).as_json()
    assert one["tokens_high"] is None and one["tokens_low"] == one["input_tokens_low"] > 0
