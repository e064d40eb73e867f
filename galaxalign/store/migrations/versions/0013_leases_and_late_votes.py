"""No volunteer's work refused: a galaxy on a volunteer's screen is held for them (leases), and a vote that
arrives after its galaxy retired is stored and flagged late instead of refused

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 16:10:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('classifications') as batch:
        batch.add_column(sa.Column('late', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'leases',
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('galaxy_id', sa.Integer(), sa.ForeignKey('galaxies.id', ondelete='CASCADE'), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_leases_galaxy_id', 'leases', ['galaxy_id'])


def downgrade() -> None:
    op.drop_index('ix_leases_galaxy_id', table_name='leases')
    op.drop_table('leases')
    with op.batch_alter_table('classifications') as batch:
        batch.drop_column('late')
