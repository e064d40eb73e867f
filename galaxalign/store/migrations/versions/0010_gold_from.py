"""a survey's gold may come from a linked survey of rendered galaxies with known truth

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 08:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('surveys') as batch:
        batch.add_column(sa.Column('gold_from_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_survey_gold_from', 'surveys', ['gold_from_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('surveys') as batch:
        batch.drop_constraint('fk_survey_gold_from', type_='foreignkey')
        batch.drop_column('gold_from_id')
