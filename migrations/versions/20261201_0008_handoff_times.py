"""handoff times

Each handoff keeps its queue wait, first reply and time to close in whole
seconds, whether its conversation had been handed off before, and its
conversation's channel, so the dashboard's service figures read percentiles
from an index in order, count conversations without a DISTINCT and filter
by channel without a join (bot/insight/queries.py).

Database triggers keep the new columns, like the message counts of 0007:
every way a handoff is written (the ORM, take-over's guarded UPDATE, the
synthetic generator's bulk inserts) stays right without each remembering
to. Seconds are rounded to the nearest, halves away from zero, from the
exact microseconds on both databases, so both store the same numbers.

A later migration that rebuilds the handoff table on SQLite (a batch
"move and copy") drops these triggers: it must create them again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# duration column -> (later, earlier) timestamp columns.
TIMES = {
    "wait_seconds": ("assigned_at", "queued_at"),
    "reply_seconds": ("first_reply_at", "assigned_at"),
    "close_seconds": ("closed_at", "queued_at"),
}
SHORT = {"wait_seconds": "wait", "reply_seconds": "reply", "close_seconds": "close"}
REST = ["queued_at", "country", "topic", "channel"]
# As bot.db.models.handoff_duration_indexes: by time, and by country then time.
DURATION_INDEXES = {
    **{f"ix_handoff_insight_{SHORT[c]}": [c, *REST] for c in TIMES},
    **{
        f"ix_handoff_insight_country_{SHORT[c]}": ["country", c, *REST[:1], *REST[2:]]
        for c in TIMES
    },
}
INSIGHT_BEFORE = [
    "queued_at",
    "country",
    "topic",
    "priority",
    "reason",
    "outcome",
    "assigned_at",
    "first_reply_at",
    "closed_at",
    "conversation_id",
]
INSIGHT_AFTER = [
    "queued_at",
    "country",
    "topic",
    "priority",
    "reason",
    "outcome",
    "closed_at",
    "channel",
    "wait_seconds",
    "reply_seconds",
    "close_seconds",
    "is_repeat",
    "conversation_id",
]
WATCHED = "queued_at, assigned_at, first_reply_at, closed_at"


def _sqlite_seconds(later: str, earlier: str) -> str:
    # julianday keeps only milliseconds: it takes the whole seconds, and the
    # fractions ("YYYY-MM-DD HH:MM:SS.ffffff" from the 20th character) are
    # subtracted as microseconds, so a half second is exactly half and
    # rounds away from zero, as on PostgreSQL.
    whole = (
        f"round((julianday(substr({later}, 1, 19)) - julianday(substr({earlier}, 1, 19))) "
        "* 86400.0)"
    )
    micro = (
        f"round((CAST(substr({later}, 20) AS REAL) - CAST(substr({earlier}, 20) AS REAL)) "
        "* 1000000.0)"
    )
    return f"CAST(round(({whole} * 1000000.0 + {micro}) / 1000000.0) AS INTEGER)"


def _postgres_seconds(later: str, earlier: str) -> str:
    # numeric round: halves away from zero, as SQLite's round.
    return f"CAST(round(CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS numeric)) AS INTEGER)"


def _sqlite_times() -> str:
    return ", ".join(
        f"{column} = {_sqlite_seconds(later, earlier)}"
        for column, (later, earlier) in TIMES.items()
    )


# The row's own earlier handoffs, by id: the order in which they were written.
REPEAT = (
    "EXISTS (SELECT 1 FROM handoff AS earlier "
    "WHERE earlier.conversation_id = handoff.conversation_id AND earlier.id < handoff.id)"
)

CHANNEL = "(SELECT channel FROM conversation WHERE conversation.id = handoff.conversation_id)"

SQLITE_TRIGGERS = (
    f"""
    CREATE TRIGGER handoff_times_insert AFTER INSERT ON handoff
    BEGIN
        UPDATE handoff SET {_sqlite_times()}, is_repeat = {REPEAT},
            channel = coalesce(channel, {CHANNEL})
        WHERE id = NEW.id;
    END
    """,
    f"""
    CREATE TRIGGER handoff_times_update AFTER UPDATE OF {WATCHED} ON handoff
    BEGIN
        UPDATE handoff SET {_sqlite_times()} WHERE id = NEW.id;
    END
    """,
)
POSTGRES_TRIGGERS = (
    """
    CREATE FUNCTION handoff_times() RETURNS trigger AS $$
    BEGIN
        """
    + "\n        ".join(
        f"NEW.{column} := {_postgres_seconds(f'NEW.{later}', f'NEW.{earlier}')};"
        for column, (later, earlier) in TIMES.items()
    )
    + """
        IF TG_OP = 'INSERT' THEN
            IF NEW.channel IS NULL THEN
                NEW.channel := (
                    SELECT channel FROM conversation WHERE conversation.id = NEW.conversation_id
                );
            END IF;
            NEW.is_repeat := EXISTS (
                SELECT 1 FROM handoff AS earlier
                WHERE earlier.conversation_id = NEW.conversation_id AND earlier.id < NEW.id
            );
        END IF;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE TRIGGER handoff_times BEFORE INSERT OR UPDATE OF {WATCHED} ON handoff
    FOR EACH ROW EXECUTE FUNCTION handoff_times()
    """,
)


def _backfill(dialect: str) -> None:
    if dialect == "postgresql":
        times = ", ".join(
            f"{column} = {_postgres_seconds(later, earlier)}"
            for column, (later, earlier) in TIMES.items()
        )
    else:
        times = _sqlite_times()
    op.execute(f"UPDATE handoff SET {times}")
    op.execute(f"UPDATE handoff SET is_repeat = {REPEAT}, channel = {CHANNEL}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("wait_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reply_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("close_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("is_repeat", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.create_index("ix_handoff_conversation", ["conversation_id", "id"], unique=False)
    _backfill(dialect)
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_index("ix_handoff_insight")
        batch_op.create_index("ix_handoff_insight", INSIGHT_AFTER, unique=False)
        for name, columns in DURATION_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
    for statement in POSTGRES_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)
    op.execute("ANALYZE handoff")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS handoff_times ON handoff")
        op.execute("DROP FUNCTION IF EXISTS handoff_times()")
    else:
        op.execute("DROP TRIGGER IF EXISTS handoff_times_insert")
        op.execute("DROP TRIGGER IF EXISTS handoff_times_update")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        for name in reversed(DURATION_INDEXES):
            batch_op.drop_index(name)
        batch_op.drop_index("ix_handoff_insight")
        batch_op.create_index("ix_handoff_insight", INSIGHT_BEFORE, unique=False)
        batch_op.drop_index("ix_handoff_conversation")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_column("is_repeat")
        batch_op.drop_column("close_seconds")
        batch_op.drop_column("reply_seconds")
        batch_op.drop_column("wait_seconds")
        batch_op.drop_column("channel")
