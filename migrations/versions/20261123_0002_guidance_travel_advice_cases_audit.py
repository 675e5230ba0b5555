"""guidance travel advice cases audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:49:18.389859
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_action_at", ["action", "at"], unique=False)

    op.create_table(
        "case_lookup_lock",
        sa.Column("reference_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("reference_hash", name=op.f("pk_case_lookup_lock")),
    )
    op.create_table(
        "guidance_article",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=48), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guidance_article")),
        sa.UniqueConstraint("topic", "country", name=op.f("uq_guidance_article_topic_country")),
    )
    with op.batch_alter_table("guidance_article", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guidance_article_topic"), ["topic"], unique=False)

    op.create_table(
        "travel_advice",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column(
            "advise_against",
            sa.Enum(
                "none",
                "all-but-essential-parts",
                "all-parts",
                "all-but-essential",
                "all",
                name="advise_against",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("advise_against_areas", sa.Text(), nullable=False),
        sa.Column("last_updated", sa.Date(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_travel_advice")),
        sa.UniqueConstraint("country", name=op.f("uq_travel_advice_country")),
    )
    op.create_table(
        "consular_case",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("case_type", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=120), nullable=False),
        sa.Column("next_step", sa.Text(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("surname_hash", sa.String(length=64), nullable=False),
        sa.Column("date_of_birth_hash", sa.String(length=64), nullable=False),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["post.id"],
            name=op.f("fk_consular_case_post_id_post"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consular_case")),
        sa.UniqueConstraint("reference", name=op.f("uq_consular_case_reference")),
    )
    op.create_table(
        "guidance_revision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "in_review",
                "published",
                "archived",
                name="revision_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source_url", sa.String(length=500), nullable=False),
        sa.Column("last_reviewed", sa.Date(), nullable=False),
        sa.Column("review_by", sa.Date(), nullable=True),
        sa.Column("example_questions", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("reviewer", sa.String(length=120), nullable=True),
        sa.Column("change_note", sa.Text(), nullable=False),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["guidance_article.id"],
            name=op.f("fk_guidance_revision_article_id_guidance_article"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guidance_revision")),
        sa.UniqueConstraint(
            "article_id", "number", name=op.f("uq_guidance_revision_article_id_number")
        ),
    )
    with op.batch_alter_table("guidance_revision", schema=None) as batch_op:
        batch_op.create_index(
            "ix_guidance_revision_article_id_status", ["article_id", "status"], unique=False
        )

    op.create_table(
        "case_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["consular_case.id"],
            name=op.f("fk_case_event_case_id_consular_case"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_event")),
    )
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_event_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_event_case_id"))

    op.drop_table("case_event")
    with op.batch_alter_table("guidance_revision", schema=None) as batch_op:
        batch_op.drop_index("ix_guidance_revision_article_id_status")

    op.drop_table("guidance_revision")
    op.drop_table("consular_case")
    op.drop_table("travel_advice")
    with op.batch_alter_table("guidance_article", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guidance_article_topic"))

    op.drop_table("guidance_article")
    op.drop_table("case_lookup_lock")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_action_at")

    op.drop_table("audit_event")
