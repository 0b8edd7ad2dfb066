"""The filter language parser: text → typed AST, with errors that name the token and its position."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import FilterSyntaxError, InvalidInput
from shipyard.tracking.filter_parser import (
    ATTRIBUTES,
    DATASET_FIELDS,
    LIKE_OPS,
    RANGE_OPS,
    TIME_ATTRIBUTES,
    And,
    Comparison,
    Entity,
    EntityKind,
    Expr,
    Not,
    Op,
    Or,
    OrderKey,
    format_filter,
    parse_filter,
    parse_order_by,
)

M, P, T, A, D = EntityKind.METRIC, EntityKind.PARAM, EntityKind.TAG, EntityKind.ATTRIBUTE, EntityKind.DATASET


def cmp(kind: EntityKind, key: str, op: Op, value: object = None) -> Comparison:
    return Comparison(Entity(kind, key), op, value)  # type: ignore[arg-type]


ACC_GT = cmp(M, "acc", Op.GT, 0.9)

VALID = [
    ("metrics.acc > 0.9", ACC_GT),
    ("metrics.acc>0.9", ACC_GT),
    ("  metric.acc   >   .9  ", ACC_GT),
    ("METRICS.acc > 9e-1", ACC_GT),
    ("metrics.acc = 1", cmp(M, "acc", Op.EQ, 1.0)),
    ("metrics.acc == 1", cmp(M, "acc", Op.EQ, 1.0)),
    ("metrics.acc != -2.5", cmp(M, "acc", Op.NE, -2.5)),
    ("metrics.acc <> +3", cmp(M, "acc", Op.NE, 3.0)),
    ("metrics.acc < 1E3", cmp(M, "acc", Op.LT, 1000.0)),
    ("metrics.acc <= 5.", cmp(M, "acc", Op.LE, 5.0)),
    ("metrics.acc >= -1e-3", cmp(M, "acc", Op.GE, -0.001)),
    ("metrics.acc < inf", cmp(M, "acc", Op.LT, math.inf)),
    ("metrics.acc > -INF", cmp(M, "acc", Op.GT, -math.inf)),
    ("metrics.acc > -Infinity", cmp(M, "acc", Op.GT, -math.inf)),
    ("metrics.val/acc > 0.9", cmp(M, "val/acc", Op.GT, 0.9)),
    ("metrics.a-b.c:d_1 > 0.9", cmp(M, "a-b.c:d_1", Op.GT, 0.9)),
    ("metrics.1st > 0.9", cmp(M, "1st", Op.GT, 0.9)),
    ("metrics.`my key` > 0.9", cmp(M, "my key", Op.GT, 0.9)),
    ("metrics.`a'b\"c(d)` > 0.9", cmp(M, "a'b\"c(d)", Op.GT, 0.9)),
    ("metrics.Acc > 0.9", cmp(M, "Acc", Op.GT, 0.9)),
    ("metrics.acc in (1, 2.5, -inf)", cmp(M, "acc", Op.IN, (1.0, 2.5, -math.inf))),
    ("metrics.acc NOT IN (1)", cmp(M, "acc", Op.NOT_IN, (1.0,))),
    ("metrics.acc is null", cmp(M, "acc", Op.IS_NULL)),
    ("metrics.acc IS NOT NULL", cmp(M, "acc", Op.IS_NOT_NULL)),
    ("params.model = 'resnet'", cmp(P, "model", Op.EQ, "resnet")),
    ('param.model = "resnet"', cmp(P, "model", Op.EQ, "resnet")),
    ("params.model.depth = '5'", cmp(P, "model.depth", Op.EQ, "5")),
    ("params.depth = 5", cmp(P, "depth", Op.EQ, "5")),
    ("params.depth = 05", cmp(P, "depth", Op.EQ, "05")),
    ("params.lr = 1e-3", cmp(P, "lr", Op.EQ, "1e-3")),
    ("params.depth != 5", cmp(P, "depth", Op.NE, "5")),
    ("params.depth > 5", cmp(P, "depth", Op.GT, 5.0)),
    ("params.depth <= 1e-3", cmp(P, "depth", Op.LE, 0.001)),
    ("params.depth > '5'", cmp(P, "depth", Op.GT, "5")),
    ("params.depth in (5, 'x', 1.50)", cmp(P, "depth", Op.IN, ("5", "x", "1.50"))),
    ("params.model like 'res%'", cmp(P, "model", Op.LIKE, "res%")),
    ("params.model ILIKE 'RES%'", cmp(P, "model", Op.ILIKE, "RES%")),
    ("params.model not like 'res%'", cmp(P, "model", Op.NOT_LIKE, "res%")),
    ("params.model Not ILike 'res%'", cmp(P, "model", Op.NOT_ILIKE, "res%")),
    ("params.x = 'it\\'s'", cmp(P, "x", Op.EQ, "it's")),
    ('params.x = "say \\"hi\\""', cmp(P, "x", Op.EQ, 'say "hi"')),
    ("params.x = 'a\\\\b'", cmp(P, "x", Op.EQ, "a\\b")),
    ("params.x = 'a\\%b'", cmp(P, "x", Op.EQ, "a\\%b")),
    ("params.x = ''", cmp(P, "x", Op.EQ, "")),
    ("params.x = 'and or not ( )'", cmp(P, "x", Op.EQ, "and or not ( )")),
    ("tags.team = 'nlp'", cmp(T, "team", Op.EQ, "nlp")),
    ("tag.team > 5", cmp(T, "team", Op.GT, "5")),
    ("tags.`mlflow.user` = 'x'", cmp(T, "mlflow.user", Op.EQ, "x")),
    ("attributes.status = 'finished'", cmp(A, "status", Op.EQ, "FINISHED")),
    ("attr.status != 'Failed'", cmp(A, "status", Op.NE, "FAILED")),
    ("run.status in ('running', 'KILLED')", cmp(A, "status", Op.IN, ("RUNNING", "KILLED"))),
    ("attribute.status like 'fin%'", cmp(A, "status", Op.LIKE, "FIN%")),
    ("attributes.run_name = 'a'", cmp(A, "name", Op.EQ, "a")),
    ("attributes.NAME = 'a'", cmp(A, "name", Op.EQ, "a")),
    ("attributes.start_time >= 1700000000000", cmp(A, "start_time", Op.GE, 1.7e12)),
    ("attributes.end_time is null", cmp(A, "end_time", Op.IS_NULL)),
    ("attributes.experiment_id = 0", cmp(A, "experiment_id", Op.EQ, "0")),
    ("attributes.user ilike 'al%'", cmp(A, "user", Op.ILIKE, "al%")),
    ("datasets.name = 'train'", cmp(D, "name", Op.EQ, "train")),
    ("dataset.CONTEXT is not null", cmp(D, "context", Op.IS_NOT_NULL)),
    ("datasets.digest in ('a', 'b')", cmp(D, "digest", Op.IN, ("a", "b"))),
    (
        "metrics.acc > 0.9 and params.m = 'a' or tags.t = 'b'",
        Or((And((ACC_GT, cmp(P, "m", Op.EQ, "a"))), cmp(T, "t", Op.EQ, "b"))),
    ),
    (
        "metrics.acc > 0.9 or params.m = 'a' and tags.t = 'b'",
        Or((ACC_GT, And((cmp(P, "m", Op.EQ, "a"), cmp(T, "t", Op.EQ, "b"))))),
    ),
    (
        "metrics.acc > 0.9 AND (params.m = 'a' OR tags.t = 'b')",
        And((ACC_GT, Or((cmp(P, "m", Op.EQ, "a"), cmp(T, "t", Op.EQ, "b"))))),
    ),
    (
        "metrics.acc > 0.9 and params.m = 'a' and tags.t = 'b'",
        And((ACC_GT, cmp(P, "m", Op.EQ, "a"), cmp(T, "t", Op.EQ, "b"))),
    ),
    (
        "(metrics.acc > 0.9 and params.m = 'a') and tags.t = 'b'",
        And((And((ACC_GT, cmp(P, "m", Op.EQ, "a"))), cmp(T, "t", Op.EQ, "b"))),
    ),
    ("not metrics.acc > 0.9", Not(ACC_GT)),
    ("NOT NOT metrics.acc > 0.9", Not(Not(ACC_GT))),
    ("not metrics.acc > 0.9 and tags.t = 'b'", And((Not(ACC_GT), cmp(T, "t", Op.EQ, "b")))),
    ("not (metrics.acc > 0.9 or tags.t = 'b')", Not(Or((ACC_GT, cmp(T, "t", Op.EQ, "b"))))),
    ("((metrics.acc > 0.9))", ACC_GT),
    ("(metrics.acc>0.9)and(tags.t='b')", And((ACC_GT, cmp(T, "t", Op.EQ, "b")))),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_valid_filter_parses_to_expected_ast(text: str, expected: Expr) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_filter_is_no_filter(text: str | None) -> None:
    assert parse_filter(text) is None


def test_nan_literal_parses_to_nan() -> None:
    parsed = parse_filter("metrics.acc != NaN")
    assert isinstance(parsed, Comparison) and isinstance(parsed.value, float) and math.isnan(parsed.value)


SYNTAX_ERRORS = [
    # (text, message fragment, token, position)
    ("metrics.acc >", "expected a value after '>'", "", 13),
    ("metrics.acc > and", "expected a value after '>'", "and", 14),
    ("metrics.acc > metrics.b", "expected a value after '>'", "metrics.b", 14),
    ("metrics.acc > 'x", "unterminated string", "'x", 14),
    ('params.a = "x\\"', "unterminated string", '"x\\"', 11),
    ("metrics.acc > 0.9)", "unbalanced parenthesis", ")", 17),
    (")", "unbalanced parenthesis", ")", 0),
    ("(metrics.acc > 0.9", "unbalanced parenthesis", "(", 0),
    ("((metrics.acc > 0.9)", "unbalanced parenthesis", "(", 0),
    ("metrics.a in (1, 2", "unbalanced parenthesis", "(", 13),
    ("()", "expected a comparison after '('", ")", 1),
    ("metrics.acc > 1 and", "expected a comparison after 'and'", "", 19),
    ("metrics.acc > 1 or or", "expected a comparison", "or", 19),
    ("not", "expected a comparison after 'not'", "", 3),
    ("acc > 1", "unexpected token", "acc", 0),
    ("'x' = params.a", "unexpected token", "'x'", 0),
    ("metrics.acc 1", "expected an operator after 'metrics.acc'", "1", 12),
    ("metrics.acc", "expected an operator", "", 11),
    ("metrics.acc > 1 metrics.b > 2", "unexpected token", "metrics.b", 16),
    ("(metrics.acc > 1 metrics.b > 2)", "expected 'and', 'or' or ')'", "metrics.b", 17),
    ("metrics.acc > 1 && metrics.b > 2", "unexpected character", "&", 16),
    ("metrics.acc @ 1", "unexpected character", "@", 12),
    ("metrics.acc > 5abc", "malformed number", "5abc", 14),
    ("metrics.acc > 1.2.3", "malformed number", "1.2.3", 14),
    ("metrics.acc > -info", "malformed number", "-info", 14),
    ("metrics.acc > - 1", "unexpected character", "-", 14),
    ("foo.bar = 1", "unknown entity type 'foo'", "foo.bar", 0),
    ("metrics. = 1", "expected a key after 'metrics.'", "metrics.", 0),
    ("metrics.`a b = 1", "unterminated `quoted` key", "`a b = 1", 8),
    ("metrics.a `b` = 1", "unexpected character", "`", 10),
    ("metrics.a in 5", "expected '(' after 'in'", "5", 13),
    ("metrics.a in ()", "expected a value after '('", ")", 14),
    ("metrics.a in (1,)", "expected a value after ','", ")", 16),
    ("metrics.a in (1 2)", "expected ',' or ')'", "2", 16),
    ("metrics.a is 5", "expected 'null' or 'not null' after 'is'", "5", 13),
    ("metrics.a is not 5", "expected 'null' after 'is not'", "5", 17),
    ("metrics.a not 5", "expected 'like', 'ilike' or 'in' after 'not'", "5", 14),
    ("params.a like 5", "expected a quoted pattern after 'like'", "5", 14),
    ("params.a not ilike", "expected a quoted pattern after 'ilike'", "", 18),
    ("(" * 200 + "metrics.a > 1" + ")" * 200, "nested more than", "(", 100),
    ("not " * 200 + "metrics.a > 1", "nested more than", "not", 400),
]


@pytest.mark.parametrize(("text", "message", "token", "position"), SYNTAX_ERRORS)
def test_syntax_error_names_token_and_position(text: str, message: str, token: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    assert message in str(caught.value)
    assert (caught.value.token, caught.value.position) == (token, position)
    assert f"position {position}" in str(caught.value)


SEMANTIC_ERRORS = [
    # (text, fragments the message must contain)
    ("metrics.acc like '1%'", ["metrics.acc", "like"]),
    ("metrics.acc not ilike '1%'", ["metrics.acc", "not ilike"]),
    ("metrics.acc = 'high'", ["metrics.acc", "'high'"]),
    ("metrics.acc in (1, 'x')", ["metrics.acc", "'x'"]),
    ("attributes.start_time > 'yesterday'", ["attributes.start_time", "epoch milliseconds"]),
    ("attributes.end_time like '1%'", ["attributes.end_time"]),
    ("attributes.foo = 'x'", ["'foo'", *ATTRIBUTES]),
    ("attributes.`run id` = 'x'", ["'run id'", "run_id"]),
    ("datasets.rows = 'x'", ["'rows'", *DATASET_FIELDS]),
    ("attributes.status = 'done'", ["'done'", "RUNNING", "FINISHED", "FAILED", "KILLED"]),
    ("attributes.status in ('finished', 'ok')", ["'ok'", "FINISHED"]),
    ("attributes.status = 1", ["attributes.status", "1"]),
    ("attributes.status > 'A'", ["attributes.status", "no order"]),
]


@pytest.mark.parametrize(("text", "fragments"), SEMANTIC_ERRORS)
def test_semantic_error_is_invalid_input_naming_the_entity(text: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_filter(text)
    assert not isinstance(caught.value, FilterSyntaxError)
    for fragment in fragments:
        assert fragment in str(caught.value)


ORDERS = [
    ("metrics.acc desc", OrderKey(Entity(M, "acc"), descending=True)),
    ("metrics.acc DESC", OrderKey(Entity(M, "acc"), descending=True)),
    ("params.lr", OrderKey(Entity(P, "lr"), descending=False)),
    ("  tags.team   asc ", OrderKey(Entity(T, "team"), descending=False)),
    ("attributes.start_time ASC", OrderKey(Entity(A, "start_time"), descending=False)),
    ("attr.run_name desc", OrderKey(Entity(A, "name"), descending=True)),
    ("metrics.`a b` desc", OrderKey(Entity(M, "a b"), descending=True)),
    ("metric.val/acc", OrderKey(Entity(M, "val/acc"), descending=False)),
]


@pytest.mark.parametrize(("item", "expected"), ORDERS)
def test_order_by_item_parses(item: str, expected: OrderKey) -> None:
    assert parse_order_by([item]) == [expected]


def test_order_by_none_or_empty_is_no_order() -> None:
    assert parse_order_by(None) == []
    assert parse_order_by([]) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status = 'FINISHED'", cmp(A, "status", Op.EQ, "FINISHED")),
        ("run_name LIKE 'fold-%'", cmp(A, "name", Op.LIKE, "fold-%")),
        ("attributes.created > 0", cmp(A, "start_time", Op.GT, 0.0)),
        ("attributes.user_id = 'ana'", cmp(A, "user", Op.EQ, "ana")),
        ("attributes.\"run name\" = 'x'", cmp(A, "name", Op.EQ, "x")),
        ('metrics."my metric" > 1', cmp(M, "my metric", Op.GT, 1.0)),
        ("tags.'mlflow.runName' = 'x'", cmp(T, "mlflow.runName", Op.EQ, "x")),
        ('params."a \\" b" = \'1\'', cmp(P, 'a " b', Op.EQ, "1")),
    ],
)
def test_mlflow_spellings_parse_as_mlflow_reads_them(text: str, expected: Comparison) -> None:
    """MLflow's filters work unchanged: bare attributes, its attribute names, keys in quotes."""
    assert parse_filter(text) == expected


def test_mlflow_order_by_spellings_parse() -> None:
    assert parse_order_by(["start_time DESC", "created", 'metrics."my metric" asc']) == [
        OrderKey(Entity(A, "start_time"), descending=True),
        OrderKey(Entity(A, "start_time"), descending=False),
        OrderKey(Entity(M, "my metric"), descending=False),
    ]


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("", "expected 'ENTITY [asc|desc]'"),
        ("acc desc", "'acc desc'"),
        ("metrics.acc descending", "'metrics.acc descending'"),
        ("metrics.acc desc asc", "'metrics.acc desc asc'"),
        ("metrics.acc > 1", "'metrics.acc > 1'"),
        ("metrics.`acc desc", "unterminated"),
        ("attributes.foo", "'foo'"),
        ("datasets.name", "datasets.name"),
        ("foo.bar", "'foo.bar'"),
    ],
)
def test_invalid_order_by_item_is_invalid_input_naming_it(item: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_order_by([item])
    assert fragment in str(caught.value)


def test_order_by_rejects_a_bare_string() -> None:
    with pytest.raises(InvalidInput, match="list"):
        parse_order_by("metrics.acc desc")  # type: ignore[arg-type]


def test_entity_renders_backticks_only_when_needed() -> None:
    assert str(Entity(M, "val/acc")) == "metrics.val/acc"
    assert str(Entity(M, "my key")) == "metrics.`my key`"
    assert str(Entity(T, "")) == "tags.``"


# ------------------------------------------------------------------------------------- property tests

_KEY_ALPHABET = st.characters(codec="utf-8", exclude_characters="`", exclude_categories=("Cs",))
keys = st.one_of(
    st.from_regex(r"[A-Za-z0-9_\-./:]{1,12}", fullmatch=True), st.text(_KEY_ALPHABET, min_size=1, max_size=8)
)
numbers = st.floats(allow_nan=True, allow_infinity=True)
strings = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10)
statuses = st.sampled_from(["RUNNING", "FINISHED", "FAILED", "KILLED"])
null_ops = st.sampled_from([Op.IS_NULL, Op.IS_NOT_NULL])
compare_ops = st.sampled_from([Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE])
like_ops = st.sampled_from([Op.LIKE, Op.ILIKE, Op.NOT_LIKE, Op.NOT_ILIKE])
in_ops = st.sampled_from([Op.IN, Op.NOT_IN])


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    """Any comparison the parser can produce, typed as the parser types it."""
    kind = draw(st.sampled_from(list(EntityKind)))
    if kind is A:
        key = draw(st.sampled_from(ATTRIBUTES))
    elif kind is D:
        key = draw(st.sampled_from(DATASET_FIELDS))
    else:
        key = draw(keys)
    entity = Entity(kind, key)
    op = draw(st.one_of(null_ops, compare_ops, like_ops, in_ops))
    if op in (Op.IS_NULL, Op.IS_NOT_NULL):
        return Comparison(entity, op, None)
    numeric = kind is M or (kind is A and key in TIME_ATTRIBUTES)
    if numeric and op in LIKE_OPS:
        op = Op.EQ
    if entity == Entity(A, "status"):
        if op in RANGE_OPS:
            op = Op.NE
        values = (
            statuses if op not in (Op.LIKE, Op.ILIKE, Op.NOT_LIKE, Op.NOT_ILIKE) else strings.map(str.upper)
        )
    elif numeric or (kind is P and op in RANGE_OPS and draw(st.booleans())):
        values = numbers
    else:
        values = strings
    if op in (Op.IN, Op.NOT_IN):
        return Comparison(entity, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    return Comparison(entity, op, draw(values))


def expressions() -> st.SearchStrategy[Expr]:
    return st.recursive(
        comparisons(),
        lambda inner: st.one_of(
            st.builds(Not, inner),
            st.lists(inner, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
            st.lists(inner, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
        ),
        max_leaves=8,
    )


_ALIASES = {
    M: ["metrics", "metric", "METRICS"],
    P: ["params", "param", "Params"],
    T: ["tags", "tag"],
    A: ["attributes", "attribute", "attr", "run"],
    D: ["datasets", "dataset"],
}
_SPELLINGS = {Op.EQ: ["=", "=="], Op.NE: ["!=", "<>"]}


def render(expr: Expr, draw: st.DrawFn) -> str:
    """Like format_filter, with random spellings: aliases, keyword case, quotes, spacing, redundant parens."""

    def word(text: str) -> str:
        return draw(st.sampled_from([text, text.upper(), text.title()]))

    def value(v: float | str) -> str:
        if isinstance(v, float):
            return repr(v) if not math.isinf(v) else ("-" if v < 0 else "") + word("inf")
        quote = draw(st.sampled_from(["'", '"']))
        return quote + v.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote

    def comparison(c: Comparison) -> str:
        entity = f"{draw(st.sampled_from(_ALIASES[c.entity.kind]))}.{str(c.entity).partition('.')[2]}"
        op = draw(st.sampled_from(_SPELLINGS.get(c.op, [c.op.value])))
        op = " ".join(word(part) for part in op.split()) if op[0].isalpha() else op
        if c.value is None:
            return f"{entity} {op}"
        if isinstance(c.value, tuple):
            return f"{entity} {op} ({', '.join(value(v) for v in c.value)})"
        space = draw(st.sampled_from([" ", "  ", "\t"]))
        return f"{entity}{space}{op}{space}{value(c.value)}"

    def group(text: str, required: bool) -> str:
        return f"({text})" if required or draw(st.booleans()) else text

    if isinstance(expr, Comparison):
        return group(comparison(expr), required=False)
    if isinstance(expr, Not):
        return f"{word('not')} {group(render(expr.item, draw), isinstance(expr.item, And | Or))}"
    if isinstance(expr, And):
        parts = [group(render(item, draw), isinstance(item, And | Or)) for item in expr.items]
        return f" {word('and')} ".join(parts)
    parts = [group(render(item, draw), isinstance(item, Or)) for item in expr.items]
    return f" {word('or')} ".join(parts)


def nan_safe(expr: object) -> object:
    """The expression with NaN replaced by a marker, so that equal trees compare equal."""
    if isinstance(expr, float) and math.isnan(expr):
        return "<nan>"
    if isinstance(expr, tuple):
        return tuple(nan_safe(item) for item in expr)
    if isinstance(expr, Comparison):
        return (expr.entity, expr.op, nan_safe(expr.value))
    if isinstance(expr, And | Or):
        return (type(expr).__name__, nan_safe(expr.items))
    if isinstance(expr, Not):
        return ("Not", nan_safe(expr.item))
    return expr


@settings(max_examples=400)
@given(expressions(), st.data())
def test_rendered_ast_parses_back_to_the_same_ast(expr: Expr, data: st.DataObject) -> None:
    text = render(expr, data.draw)
    assert nan_safe(parse_filter(text)) == nan_safe(expr), text


@settings(max_examples=200)
@given(expressions())
def test_format_filter_round_trips(expr: Expr) -> None:
    text = format_filter(expr)
    assert nan_safe(parse_filter(text)) == nan_safe(expr), text
    assert format_filter(parse_filter(text)) == text  # type: ignore[arg-type]


FRAGMENTS = [
    "metrics.acc", "params.`a b`", "tags.t", "attributes.status", "attr.start_time", "datasets.name",
    "foo.bar", "acc", "and", "or", "not", "in", "is", "null", "like", "ilike", "(", ")", ",", "=", "==",
    "!=", "<>", "<", "<=", ">", ">=", "1", "-2.5", "1e3", "nan", "-inf", "'x'", '"y"', "'FINISHED'", "'",
    "`", ".", "-", "\\", "5abc",
]  # fmt: skip


def check_only_filter_errors(text: str) -> None:
    try:
        parse_filter(text)
    except FilterSyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        assert text[exc.position : exc.position + len(exc.token)] == exc.token
    except InvalidInput:
        pass


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_filter_errors(text: str) -> None:
    check_only_filter_errors(text)


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.sampled_from([" ", ""]))
def test_token_soup_raises_only_filter_errors(fragments: list[str], separator: str) -> None:
    check_only_filter_errors(separator.join(fragments))
