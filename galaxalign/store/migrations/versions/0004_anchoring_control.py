"""anchoring control: a blind fraction per survey, and whether each vote's proposal was hidden

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('surveys') as batch:
        batch.add_column(sa.Column('blind_fraction', sa.Float(), nullable=False, server_default='0.1'))
    with op.batch_alter_table('classifications') as batch:
        batch.add_column(sa.Column('blind', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('classifications') as batch:
        batch.drop_column('blind')
    with op.batch_alter_table('surveys') as batch:
        batch.drop_column('blind_fraction')
