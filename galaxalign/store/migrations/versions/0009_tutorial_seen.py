"""when a volunteer finished the first-visit tutorial (None: show it)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 08:20:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volunteers') as batch:
        batch.add_column(sa.Column('tutorial_seen_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('volunteers') as batch:
        batch.drop_column('tutorial_seen_at')
