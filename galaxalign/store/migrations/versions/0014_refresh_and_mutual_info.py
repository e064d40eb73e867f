"""Every vote teaches: the fast refresh of a survey's proposals every K votes (surveys.refresh_every,
surveys.refreshed_votes), the ensemble's mutual information per prediction and the survey's queue strategy
(surveys.queue_strategy: entropy by default, bald among the choices)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 17:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('surveys') as batch:
        batch.add_column(sa.Column('refresh_every', sa.Integer(), nullable=False, server_default='50'))
        batch.add_column(sa.Column('refreshed_votes', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('queue_strategy', sa.String(20), nullable=False, server_default='entropy'))
    with op.batch_alter_table('predictions') as batch:
        batch.add_column(sa.Column('mutual_info', sa.Float(), nullable=True))
    op.create_index('ix_prediction_mutual_info', 'predictions', ['model_version_id', 'mutual_info'])


def downgrade() -> None:
    op.drop_index('ix_prediction_mutual_info', table_name='predictions')
    with op.batch_alter_table('predictions') as batch:
        batch.drop_column('mutual_info')
    with op.batch_alter_table('surveys') as batch:
        batch.drop_column('queue_strategy')
        batch.drop_column('refreshed_votes')
        batch.drop_column('refresh_every')
