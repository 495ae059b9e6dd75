"""Calendars, plans and contracts: the support servicer's methods for them."""

from __future__ import annotations

from guichet.support.v1 import support_pb2 as pb

from services.kit.auth import current_principal
from services.support.domain.calendar_changes import update_calendar
from services.support.domain.calendars import (
    create_calendar,
    list_calendars,
    list_holiday_categories,
)
from services.support.domain.plans import (
    TargetInput,
    create_plan,
    get_contract,
    list_contracts,
    list_plans,
    set_contract,
)
from services.support.rpc.base import Context, ServicerBase
from services.support.rpc.protos import (
    PRIORITY_IN,
    calendar_to_proto,
    contract_to_proto,
    enum_in,
    page_response,
    plan_to_proto,
)
from workflows.contracts.business_time import CalendarSpec


class PlanMethods(ServicerBase):
    """CreateCalendar … ListContracts."""

    async def CreateCalendar(
        self, request: pb.CreateCalendarRequest, context: Context
    ) -> pb.CreateCalendarResponse:
        async with self._sessions.begin() as session:
            view = await create_calendar(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                name=request.name,
                spec=CalendarSpec(
                    time_zone=request.time_zone,
                    weekly=list(request.weekly_hours),
                    country=request.country,
                    subdivision=request.subdivision,
                    closed_days=list(request.closed_days),
                    categories=list(request.holiday_categories),
                ),
            )
        return pb.CreateCalendarResponse(calendar=calendar_to_proto(view))

    async def UpdateCalendar(
        self, request: pb.UpdateCalendarRequest, context: Context
    ) -> pb.UpdateCalendarResponse:
        async with self._sessions.begin() as session:
            view, moved = await update_calendar(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                calendar_id=request.calendar_id,
                spec=CalendarSpec(
                    time_zone=request.time_zone,
                    weekly=list(request.weekly_hours),
                    country=request.country,
                    subdivision=request.subdivision,
                    closed_days=list(request.closed_days),
                    categories=list(request.holiday_categories),
                ),
            )
        self._committed()
        return pb.UpdateCalendarResponse(calendar=calendar_to_proto(view), tickets_updated=moved)

    async def ListHolidayCategories(
        self, request: pb.ListHolidayCategoriesRequest, context: Context
    ) -> pb.ListHolidayCategoriesResponse:
        categories = list_holiday_categories(actor=current_principal(), country=request.country)
        return pb.ListHolidayCategoriesResponse(categories=list(categories))

    async def ListCalendars(
        self, request: pb.ListCalendarsRequest, context: Context
    ) -> pb.ListCalendarsResponse:
        async with self._sessions.begin() as session:
            page = await list_calendars(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListCalendarsResponse(
            calendars=[calendar_to_proto(c) for c in page.items],
            page=page_response(page.next_page_token),
        )

    async def CreatePlan(
        self, request: pb.CreatePlanRequest, context: Context
    ) -> pb.CreatePlanResponse:
        async with self._sessions.begin() as session:
            view = await create_plan(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                code=request.code,
                name=request.name,
                calendar_id=request.calendar_id,
                warning_percent=request.warning_percent,
                targets=[
                    TargetInput(
                        priority=enum_in(PRIORITY_IN, t.priority),
                        first_response_minutes=t.first_response_minutes,
                        next_response_minutes=t.next_response_minutes,
                        resolution_minutes=t.resolution_minutes,
                    )
                    for t in request.targets
                ],
            )
        return pb.CreatePlanResponse(plan=plan_to_proto(view))

    async def ListPlans(
        self, request: pb.ListPlansRequest, context: Context
    ) -> pb.ListPlansResponse:
        async with self._sessions.begin() as session:
            page = await list_plans(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListPlansResponse(
            plans=[plan_to_proto(p) for p in page.items], page=page_response(page.next_page_token)
        )

    async def SetContract(
        self, request: pb.SetContractRequest, context: Context
    ) -> pb.SetContractResponse:
        async with self._sessions.begin() as session:
            contract, moved = await set_contract(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                lookup=self._lookup,
                organisation_id=request.organisation_id,
                plan_id=request.plan_id,
                operations_email=request.operations_email,
            )
        self._committed()
        return pb.SetContractResponse(contract=contract_to_proto(contract), tickets_moved=moved)

    async def GetContract(
        self, request: pb.GetContractRequest, context: Context
    ) -> pb.GetContractResponse:
        async with self._sessions.begin() as session:
            contract, plan = await get_contract(
                session=session, actor=current_principal(), organisation_id=request.organisation_id
            )
        return pb.GetContractResponse(
            contract=contract_to_proto(contract), plan=plan_to_proto(plan)
        )

    async def ListContracts(
        self, request: pb.ListContractsRequest, context: Context
    ) -> pb.ListContractsResponse:
        async with self._sessions.begin() as session:
            page = await list_contracts(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListContractsResponse(
            contracts=[contract_to_proto(c) for c in page.items],
            page=page_response(page.next_page_token),
        )
