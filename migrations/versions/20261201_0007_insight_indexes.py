"""insight indexes

The supervisors' dashboard (bot/insight): synthetic conversations are
marked, each conversation counts its messages (kept by triggers on the
message table, so the dashboard never joins millions of messages), and
covering indexes let every figure read one index in order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSIGHT_REST = ["created_at", "country", "topic", "channel", "priority", "message_count"]
LEADS = ("created_at", "topic", "country", "channel")

SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER message_count_insert AFTER INSERT ON message
    BEGIN
        UPDATE conversation SET message_count = message_count + 1
        WHERE id = NEW.conversation_id;
    END
    """,
    """
    CREATE TRIGGER message_count_delete AFTER DELETE ON message
    BEGIN
        UPDATE conversation SET message_count = message_count - 1
        WHERE id = OLD.conversation_id;
    END
    """,
)
POSTGRES_TRIGGERS = (
    """
    CREATE FUNCTION conversation_message_count() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            UPDATE conversation SET message_count = message_count + 1
            WHERE id = NEW.conversation_id;
        ELSE
            UPDATE conversation SET message_count = message_count - 1
            WHERE id = OLD.conversation_id;
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER message_count AFTER INSERT OR DELETE ON message
    FOR EACH ROW EXECUTE FUNCTION conversation_message_count()
    """,
)


UTC_HOUR = {
    "sqlite": "CAST(substr(created_at, 12, 2) AS INTEGER)",
    "postgresql": "CAST(EXTRACT(HOUR FROM created_at AT TIME ZONE 'UTC') AS INTEGER)",
}


def _columns(lead: str) -> list[str]:
    return [lead, *(column for column in INSIGHT_REST if column != lead)]


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_synthetic", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("message_count", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE conversation SET message_count = "
        "(SELECT count(*) FROM message WHERE message.conversation_id = conversation.id)"
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        for lead in LEADS:
            batch_op.create_index(f"ix_conversation_insight_{lead}", _columns(lead), unique=False)
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.create_index(
            "ix_handoff_insight",
            [
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
            ],
            unique=False,
        )
    with op.batch_alter_table("unanswered_question", schema=None) as batch_op:
        batch_op.create_index(
            "ix_unanswered_question_insight",
            ["created_at", "reason", "channel", "country", "conversation_id"],
            unique=False,
        )
    with op.batch_alter_table("guidance_feedback", schema=None) as batch_op:
        batch_op.create_index(
            "ix_guidance_feedback_insight",
            ["created_at", "article_id", "helpful", "channel", "conversation_id"],
            unique=False,
        )
    dialect = op.get_bind().dialect.name
    # The same expression bot.insight.sql.utc_hour compiles to, so the planner matches it.
    hour = UTC_HOUR[dialect] if dialect in UTC_HOUR else UTC_HOUR["sqlite"]
    op.execute(
        "CREATE INDEX ix_conversation_insight_hour ON conversation "
        f"(country, ({hour}), created_at, priority, message_count)"
    )
    for statement in POSTGRES_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS message_count ON message")
        op.execute("DROP FUNCTION IF EXISTS conversation_message_count()")
    else:
        op.execute("DROP TRIGGER IF EXISTS message_count_insert")
        op.execute("DROP TRIGGER IF EXISTS message_count_delete")
    op.execute("DROP INDEX IF EXISTS ix_conversation_insight_hour")
    with op.batch_alter_table("guidance_feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_guidance_feedback_insight")
    with op.batch_alter_table("unanswered_question", schema=None) as batch_op:
        batch_op.drop_index("ix_unanswered_question_insight")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_index("ix_handoff_insight")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        for lead in reversed(LEADS):
            batch_op.drop_index(f"ix_conversation_insight_{lead}")
        batch_op.drop_column("message_count")
        batch_op.drop_column("is_synthetic")
