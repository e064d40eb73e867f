"""survey preparation, label-set file and training config

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 19:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('surveys') as batch:
        batch.add_column(sa.Column('preparation', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('label_set_file', sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column('train_config', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('surveys') as batch:
        batch.drop_column('train_config')
        batch.drop_column('label_set_file')
        batch.drop_column('preparation')
