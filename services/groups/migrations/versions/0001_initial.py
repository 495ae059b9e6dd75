"""Initial groups schema: clients, program accounts, relationships, groups, access, process requests, outbox

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('access_grants',
    sa.Column('program_account_id', sa.Uuid(), nullable=False),
    sa.Column('employee_id', sa.Uuid(), nullable=False),
    sa.Column('group_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('process_request_id', sa.Uuid(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('program_account_manager', 'editor', 'read_only')", name=op.f('ck_access_grants_role')),
    sa.PrimaryKeyConstraint('program_account_id', 'employee_id', name=op.f('pk_access_grants'))
    )
    op.create_table('client_businesses',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('search_name', sa.String(length=200, collation='C'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client_businesses'))
    )
    op.create_index('ix_client_businesses_search_name', 'client_businesses', ['search_name', 'id'], unique=False)
    op.create_table('client_groups',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client_groups'))
    )
    op.create_index('ix_client_groups_provider_active', 'client_groups', ['provider_id', 'deleted_at', 'name'], unique=False)
    op.create_index('uq_client_groups_provider_name', 'client_groups', ['provider_id', sa.literal_column('lower(name)')], unique=True)
    op.create_table('outbox',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workflow', sa.String(length=100), nullable=False),
    sa.Column('workflow_id', sa.String(length=300), nullable=False),
    sa.Column('task_queue', sa.String(length=100), nullable=False),
    sa.Column('argument', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('workflow_id', name=op.f('uq_outbox_workflow_id'))
    )
    op.create_index(op.f('ix_outbox_started_at'), 'outbox', ['started_at'], unique=False)
    op.create_table('employee_assignments',
    sa.Column('group_id', sa.Uuid(), nullable=False),
    sa.Column('employee_id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('program_account_manager', 'editor', 'read_only')", name=op.f('ck_employee_assignments_role')),
    sa.ForeignKeyConstraint(['group_id'], ['client_groups.id'], name=op.f('fk_employee_assignments_group_id_client_groups')),
    sa.PrimaryKeyConstraint('group_id', 'employee_id', name=op.f('pk_employee_assignments'))
    )
    op.create_index('ix_employee_assignments_provider_employee', 'employee_assignments', ['provider_id', 'employee_id'], unique=False)
    op.create_table('group_members',
    sa.Column('group_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client_businesses.id'], name=op.f('fk_group_members_client_id_client_businesses')),
    sa.ForeignKeyConstraint(['group_id'], ['client_groups.id'], name=op.f('fk_group_members_group_id_client_groups')),
    sa.PrimaryKeyConstraint('group_id', 'client_id', name=op.f('pk_group_members')),
    sa.UniqueConstraint('provider_id', 'client_id', name=op.f('uq_group_members_provider_id_client_id'))
    )
    op.create_index('ix_group_members_client', 'group_members', ['client_id'], unique=False)
    op.create_table('process_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.Column('group_id', sa.Uuid(), nullable=False),
    sa.Column('group_name', sa.String(length=100), nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('initiator_id', sa.String(length=100), nullable=False),
    sa.Column('initiator_name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('employee_ids', postgresql.ARRAY(sa.Uuid()), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sa.String(length=300), nullable=False),
    sa.Column('cursor_client', sa.Uuid(), nullable=True),
    sa.Column('cursor_account', sa.Uuid(), nullable=True),
    sa.Column('done', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('failed', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("operation IN ('assign_employees', 'unassign_employees', 'add_clients', 'remove_clients', 'delete_group', 'relationship_expired', 'program_accounts_added')", name=op.f('ck_process_requests_operation')),
    sa.CheckConstraint("scope IN ('group', 'clients', 'failures')", name=op.f('ck_process_requests_scope')),
    sa.CheckConstraint("status IN ('pending', 'in_progress', 'failed', 'completed')", name=op.f('ck_process_requests_status')),
    sa.ForeignKeyConstraint(['group_id'], ['client_groups.id'], name=op.f('fk_process_requests_group_id_client_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_requests'))
    )
    op.create_index('ix_process_requests_group', 'process_requests', ['group_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_process_requests_provider_created', 'process_requests', ['provider_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_process_requests_provider_status', 'process_requests', ['provider_id', 'status', 'created_at', 'id'], unique=False)
    op.create_table('program_accounts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'closed')", name=op.f('ck_program_accounts_status')),
    sa.ForeignKeyConstraint(['client_id'], ['client_businesses.id'], name=op.f('fk_program_accounts_client_id_client_businesses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_program_accounts'))
    )
    op.create_index('ix_program_accounts_client_id', 'program_accounts', ['client_id', 'id'], unique=False, postgresql_include=['status'])
    op.create_table('relationships',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('term', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'active', 'expired')", name=op.f('ck_relationships_status')),
    sa.ForeignKeyConstraint(['client_id'], ['client_businesses.id'], name=op.f('fk_relationships_client_id_client_businesses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relationships')),
    sa.UniqueConstraint('provider_id', 'client_id', name=op.f('uq_relationships_provider_id_client_id'))
    )
    op.create_index('ix_relationships_provider_status', 'relationships', ['provider_id', 'status', 'client_id'], unique=False)
    op.create_table('process_request_clients',
    sa.Column('process_request_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['process_request_id'], ['process_requests.id'], name=op.f('fk_process_request_clients_process_request_id_process_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('process_request_id', 'client_id', name=op.f('pk_process_request_clients'))
    )
    op.create_table('process_request_failures',
    sa.Column('process_request_id', sa.Uuid(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('program_account_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['process_request_id'], ['process_requests.id'], name=op.f('fk_process_request_failures_process_request_id_process_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('process_request_id', 'attempt', 'client_id', 'program_account_id', name=op.f('pk_process_request_failures'))
    )


def downgrade() -> None:
    op.drop_table('process_request_failures')
    op.drop_table('process_request_clients')
    op.drop_index('ix_relationships_provider_status', table_name='relationships')
    op.drop_table('relationships')
    op.drop_index('ix_program_accounts_client_id', table_name='program_accounts', postgresql_include=['status'])
    op.drop_table('program_accounts')
    op.drop_index('ix_process_requests_provider_status', table_name='process_requests')
    op.drop_index('ix_process_requests_provider_created', table_name='process_requests')
    op.drop_index('ix_process_requests_group', table_name='process_requests')
    op.drop_table('process_requests')
    op.drop_index('ix_group_members_client', table_name='group_members')
    op.drop_table('group_members')
    op.drop_index('ix_employee_assignments_provider_employee', table_name='employee_assignments')
    op.drop_table('employee_assignments')
    op.drop_index(op.f('ix_outbox_started_at'), table_name='outbox')
    op.drop_table('outbox')
    op.drop_index('uq_client_groups_provider_name', table_name='client_groups')
    op.drop_index('ix_client_groups_provider_active', table_name='client_groups')
    op.drop_table('client_groups')
    op.drop_index('ix_client_businesses_search_name', table_name='client_businesses')
    op.drop_table('client_businesses')
    op.drop_table('access_grants')
