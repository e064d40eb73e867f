"""a volunteer's favourites and "something odd" flags on galaxies, one of each kind per volunteer and galaxy

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 08:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'galaxy_flags',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('galaxy_id', sa.Integer(), sa.ForeignKey('galaxies.id', ondelete='CASCADE'), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='CASCADE'), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('galaxy_id', 'volunteer_id', 'kind', name='uq_one_flag_of_a_kind'))
    op.create_index('ix_galaxy_flags_galaxy', 'galaxy_flags', ['galaxy_id'])


def downgrade() -> None:
    op.drop_index('ix_galaxy_flags_galaxy', table_name='galaxy_flags')
    op.drop_table('galaxy_flags')
