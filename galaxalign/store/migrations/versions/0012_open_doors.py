"""Opening the doors: guests, sign-up, account management. Volunteers get a normalised name key (case-
and width-insensitive uniqueness), an optional e-mail, suspension with a reason and an erasure mark;
classifications remember whether a guest cast them; project settings (home page text, who may join,
whether guests classify); one-time account links (invitations and password resets)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 11:30:00
"""
import unicodedata

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volunteers') as batch:
        batch.add_column(sa.Column('name_key', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('email', sa.String(length=320), nullable=True))
        batch.add_column(sa.Column('suspended_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('suspended_reason', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('erased_at', sa.DateTime(), nullable=True))
    conn = op.get_bind()
    vols = sa.table('volunteers', sa.column('id', sa.Integer), sa.column('name', sa.String),
                    sa.column('name_key', sa.String))
    for vid, name in conn.execute(sa.select(vols.c.id, vols.c.name)).all():
        conn.execute(vols.update().where(vols.c.id == vid).values(
            name_key=unicodedata.normalize('NFKC', name).casefold()))
    with op.batch_alter_table('volunteers') as batch:
        batch.alter_column('name_key', existing_type=sa.String(length=80), nullable=False)
        batch.create_unique_constraint('uq_volunteer_name_key', ['name_key'])
    with op.batch_alter_table('classifications') as batch:
        batch.add_column(sa.Column('guest', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_galaxies_retired_at', 'galaxies', ['retired_at'])  # the home page's recently retired
    op.create_table(
        'project_settings',
        sa.Column('key', sa.String(length=60), primary_key=True),
        sa.Column('value', sa.JSON(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False))
    op.create_table(
        'account_links',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='CASCADE'), nullable=True),
        sa.Column('role', sa.String(length=20), nullable=True),
        sa.Column('created_by', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.Column('used_by', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='SET NULL'), nullable=True))


def downgrade() -> None:
    op.drop_table('account_links')
    op.drop_table('project_settings')
    op.drop_index('ix_galaxies_retired_at', 'galaxies')
    with op.batch_alter_table('classifications') as batch:
        batch.drop_column('guest')
    with op.batch_alter_table('volunteers') as batch:
        batch.drop_constraint('uq_volunteer_name_key', type_='unique')
        for c in ('erased_at', 'suspended_reason', 'suspended_at', 'email', 'name_key'):
            batch.drop_column(c)
