"""prediction unfamiliarity (out-of-distribution score)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 21:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('predictions') as batch:
        batch.add_column(sa.Column('ood', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('predictions') as batch:
        batch.drop_column('ood')
