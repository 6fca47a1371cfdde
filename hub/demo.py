"""`omnihub demo`: realistic sample teams, agents and conversations in English and Chinese.

The content is fixed and the timing comes from a seeded random generator, so every run
files the same conversations, spread over the last days before now. Messages are keyed
by stable external ids and replies by stable idempotency keys: a second run adds nothing
that is already there.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select

from hub.clock import utcnow
from hub.config import Config
from hub.errors import NotFound
from hub.models import (
    Availability,
    ChannelKind,
    ConversationStatus,
    Identity,
    InboundMessage,
    Priority,
    Role,
    Team,
)
from hub.services import Services, open_services
from hub.store import Database, schema

Language = Literal["en", "zh"]
StepKind = Literal["in", "out", "note"]

SEED = 20261123
IN: StepKind = "in"
OUT: StepKind = "out"
NOTE: StepKind = "note"

ACCOUNT = {
    ChannelKind.EMAIL: "demo-email",
    ChannelKind.SMS: "demo-sms",
    ChannelKind.WHATSAPP: "demo-whatsapp",
    ChannelKind.VOICE: "demo-voice",
    ChannelKind.VOICEMAIL: "demo-voice",
    ChannelKind.FAX: "demo-fax",
    ChannelKind.CHAT: "demo-chat",
}
FORMAL = frozenset({ChannelKind.EMAIL, ChannelKind.FAX})


class SettableClock:
    """The demo's clock: set to each step's time, so history lies in the past."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True, slots=True)
class DemoTeam:
    """A sample team."""

    name: str
    department: str


@dataclass(frozen=True, slots=True)
class DemoAgent:
    """A sample agent with the details their signature shows."""

    username: str
    display_name: str
    role: Role
    language: Language
    availability: Availability
    teams: tuple[str, ...]
    title_en: str
    title_zh: str


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of a scenario: a customer message, an agent reply or an internal note."""

    kind: StepKind
    text: str
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """One sample conversation and what happened to it."""

    channel: ChannelKind
    language: Language
    customer: str
    address: str
    subject: str | None
    steps: tuple[Step, ...]
    assignee: str | None = None
    tags: tuple[str, ...] = ()
    priority: Priority = Priority.NORMAL
    status: ConversationStatus | None = None
    snooze_hours: float = 0


@dataclass(slots=True)
class DemoSummary:
    """What `populate` added."""

    teams: list[str] = field(default_factory=list)
    agents: dict[str, str | None] = field(default_factory=dict)
    conversations: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    replies: int = 0
    notes: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        """Conversations added."""
        return sum(self.conversations.values())


COMPANY = {
    "en": "Lumen Home Ltd, 12 Harbour Road, Bristol BS1 5TY, United Kingdom",
    "zh": "蓝湾家居有限公司 上海市徐汇区漕溪北路 88 号",
}
PHONE = {"en": "+44 117 496 0123", "zh": "+86 21 5555 0188"}

TEAMS = (DemoTeam("Support", "客服部"), DemoTeam("Billing", "财务部"))

AGENTS = (
    DemoAgent(
        "emma.clarke",
        "Emma Clarke",
        Role.SUPERVISOR,
        "en",
        Availability.AVAILABLE,
        ("Support",),
        "Customer Service Supervisor",
        "客服主管",
    ),
    DemoAgent(
        "li.wei",
        "李伟",
        Role.AGENT,
        "zh",
        Availability.AVAILABLE,
        ("Support",),
        "Customer Service Agent",
        "客服专员",
    ),
    DemoAgent(
        "james.okafor",
        "James Okafor",
        Role.AGENT,
        "en",
        Availability.AVAILABLE,
        ("Support", "Billing"),
        "Customer Service Agent",
        "客服专员",
    ),
    DemoAgent(
        "wang.fang",
        "王芳",
        Role.AGENT,
        "zh",
        Availability.BUSY,
        ("Billing",),
        "Billing Specialist",
        "财务专员",
    ),
    DemoAgent(
        "zhang.min",
        "张敏",
        Role.SUPERVISOR,
        "zh",
        Availability.AWAY,
        ("Support", "Billing"),
        "Service Quality Manager",
        "客服经理",
    ),
)
_AGENT = {a.username: a for a in AGENTS}


def _in(text: str) -> Step:
    return Step(IN, text)


def _out(agent: str, text: str) -> Step:
    return Step(OUT, text, agent)


def _note(agent: str, text: str) -> Step:
    return Step(NOTE, text, agent)


E: Language = "en"
Z: Language = "zh"
EMAIL, SMS, WA = ChannelKind.EMAIL, ChannelKind.SMS, ChannelKind.WHATSAPP
VOICE, VMAIL = ChannelKind.VOICE, ChannelKind.VOICEMAIL
FAX, CHAT = ChannelKind.FAX, ChannelKind.CHAT
RESOLVED, PENDING, SNOOZED = (
    ConversationStatus.RESOLVED,
    ConversationStatus.PENDING,
    ConversationStatus.SNOOZED,
)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        EMAIL,
        E,
        "Priya Patel",
        "priya.patel@example.com",
        "Order #48213 still not delivered",
        (
            _in(
                "Hello,\n\nI ordered an oak side table (order #48213) on the 12th and was promised "
                "delivery within 3-5 working days. It has now been eight days and the tracking page "
                'has said "in transit" since Monday. Could you tell me where the parcel is and when '
                "it will arrive?\n\nBest regards,\nPriya Patel"
            ),
            _out(
                "emma.clarke",
                "Dear Ms Patel,\n\nThank you for your message, and I am sorry that "
                "your side table is late. I have asked the courier to trace parcel 48213 and will "
                "write to you with their answer by 17:00 tomorrow.\n\nKind regards,",
            ),
            _in(
                'Thank you Emma. The tracking page still shows "in transit" this morning. I am at '
                "home all day on Friday if that helps.\n\nPriya"
            ),
            _note(
                "james.okafor",
                "Courier (DPD) confirms the parcel is held at the Bristol depot "
                "after a failed scan. Redelivery booked for Friday, 08:00-12:00.",
            ),
            _out(
                "james.okafor",
                "Dear Ms Patel,\n\nGood news: the courier found your parcel at their "
                "Bristol depot. It will be delivered this Friday between 08:00 and 12:00. As an "
                "apology for the delay we have refunded the delivery charge of £4.95.\n\nKind "
                "regards,",
            ),
        ),
        assignee="james.okafor",
        tags=("delivery", "courier"),
        priority=Priority.HIGH,
    ),
    Scenario(
        EMAIL,
        E,
        "Tom Becker",
        "tom.becker@example.org",
        "Refund for returned kettle, order #47790",
        (
            _in(
                "Hi,\n\nI returned the glass kettle from order #47790 two weeks ago (return label "
                "RT-55120) but I have not received my refund of £34.99 yet. Can you check?\n\n"
                "Thanks,\nTom"
            ),
            _out(
                "james.okafor",
                "Dear Mr Becker,\n\nThank you for your patience. Your return arrived "
                "at our warehouse on Tuesday and the refund of £34.99 was issued today to the card "
                "ending 4421. Banks usually show it within 3-5 working days.\n\nKind regards,",
            ),
            _in("Great, I can see it pending on my card already. Thanks for sorting it out."),
        ),
        assignee="james.okafor",
        tags=("refund",),
        status=RESOLVED,
    ),
    Scenario(
        EMAIL,
        E,
        "Sarah O'Neill",
        "sarah.oneill@example.ie",
        "Invoice INV-2026-0931 shows the wrong VAT number",
        (
            _in(
                "Hello,\n\nThe invoice INV-2026-0931 for our office order lists VAT number "
                "IE 6388047V, but ours is IE 6388047W. Our accounts team cannot book it like this. "
                "Could you send a corrected invoice?\n\nSarah O'Neill\nOffice Manager, Kestrel Design"
            ),
            _note(
                "wang.fang",
                "VAT number was typed wrong at checkout. Credit note CN-0412 raised; "
                "new invoice INV-2026-0977 with IE 6388047W.",
            ),
            _out(
                "james.okafor",
                "Dear Ms O'Neill,\n\nThank you for pointing this out. I have "
                "cancelled INV-2026-0931 with credit note CN-0412 and attached the corrected invoice "
                "INV-2026-0977 with VAT number IE 6388047W.\n\nKind regards,",
            ),
        ),
        assignee="james.okafor",
        tags=("invoice", "billing"),
    ),
    Scenario(
        EMAIL,
        E,
        "Daniel Kim",
        "daniel.kim@example.com",
        "Complaint about the delivery driver",
        (
            _in(
                "To whom it may concern,\n\nYesterday your driver left my new armchair in the rain "
                "outside the building, did not ring, and drove off while I was coming down the stairs. "
                "The box is soaked and I am not happy. I expect this to be taken seriously.\n\n"
                "Daniel Kim"
            ),
            _note(
                "emma.clarke",
                "Complaint about the courier. Photos requested; report to the courier "
                "account manager. Offer inspection and replacement if the chair is damaged.",
            ),
            _out(
                "emma.clarke",
                "Dear Mr Kim,\n\nThank you for telling us, and I apologise: this is "
                "not how a delivery should be made. I have reported the driver to the courier. Could "
                "you send two photos of the box and the chair? If anything is damaged we will "
                "collect it and send a replacement at no cost.\n\nKind regards,",
            ),
        ),
        assignee="emma.clarke",
        tags=("complaint", "courier"),
        priority=Priority.HIGH,
    ),
    Scenario(
        EMAIL,
        E,
        "Maria Gonzalez",
        "maria.gonzalez@example.es",
        "Warranty for the Pro 900 blender",
        (
            _in(
                "Hello,\n\nMy Pro 900 blender (bought in March) stops after a few seconds. Is this "
                "covered by the warranty, and how do I send it in?\n\nThank you,\nMaria Gonzalez"
            ),
        ),
        tags=("warranty",),
    ),
    Scenario(
        EMAIL,
        E,
        "Lucy Allen",
        "lucy.allen@example.co.uk",
        "Thank you to your team",
        (
            _in(
                "Hello,\n\nI just wanted to say thank you to Emma, who helped me on the phone last "
                "week with a mix-up in my order. Everything arrived today and it is perfect.\n\n"
                "Lucy Allen"
            ),
            _out(
                "emma.clarke",
                "Dear Ms Allen,\n\nThank you for taking the time to write to us; I "
                "have shared your kind words with the team. Enjoy your new furniture.\n\nKind "
                "regards,",
            ),
        ),
        assignee="emma.clarke",
        tags=("praise",),
        status=RESOLVED,
    ),
    Scenario(
        EMAIL,
        Z,
        "王秀英",
        "wang.xiuying@example.cn",
        "订单 #51207 快递延误,已经超过一周",
        (
            _in(
                "您好:\n\n我在 11 月 10 日下单的落地灯(订单号 51207),页面显示 3 天内发货,现在已经"
                "过去一周多了,物流信息一直停在“已揽收”。请问什么时候能送到?\n\n王秀英"
            ),
            _out(
                "li.wei",
                "王女士您好:\n\n感谢您的来信,对于快递延误给您带来的不便,我们深表歉意。"
                "我已联系快递公司查询包裹 51207 的下落,明天下午 5 点前会给您回复处理结果。",
            ),
            _in("好的,谢谢。麻烦尽快,周末家里要用。"),
            _out(
                "li.wei",
                "王女士您好:\n\n快递公司已确认包裹在转运中心滞留,今天已重新发出,预计"
                "周五送达。运单号为 SF1429 6630 1187,您可以在顺丰官网查询。再次为延误向您致歉。",
            ),
        ),
        assignee="li.wei",
        tags=("delivery",),
        priority=Priority.HIGH,
    ),
    Scenario(
        EMAIL,
        Z,
        "陈建国",
        "chen.jianguo@example.cn",
        "申请开具增值税专用发票",
        (
            _in(
                "您好:\n\n我公司于上周采购了办公椅 20 把(订单号 50642),需要开具增值税专用发票。"
                "开票信息如下:\n名称:上海启明商贸有限公司\n税号:91310115MA1H7XXXXX\n"
                "请问多久可以开出?\n\n陈建国"
            ),
            _out(
                "wang.fang",
                "陈先生您好:\n\n感谢您的订购。增值税专用发票已按您提供的信息开具,"
                "发票号码 04418821,将于明天通过顺丰寄出,预计两个工作日内送达。",
            ),
            _in("收到,谢谢!"),
        ),
        assignee="wang.fang",
        tags=("invoice", "发票"),
        status=RESOLVED,
    ),
    Scenario(
        EMAIL,
        Z,
        "刘洋",
        "liu.yang@example.cn",
        "退款申请:订单 #50877 商品质量问题",
        (
            _in(
                "您好,\n\n收到的陶瓷餐具套装(订单号 50877)有两个盘子有裂纹,我想申请退款,"
                "照片已附在邮件里。请问退款流程是怎样的?\n\n刘洋"
            ),
            _note("zhang.min", "照片已核实,属于运输破损。同意全额退款 ¥389,无需退回商品。"),
            _out(
                "wang.fang",
                "刘先生您好:\n\n很抱歉商品在运输中受损。我们已为您办理全额退款 "
                "389 元,款项将原路退回,一般 3 到 5 个工作日到账,破损商品无需寄回。",
            ),
        ),
        assignee="wang.fang",
        tags=("refund", "damaged"),
        priority=Priority.HIGH,
    ),
    Scenario(
        EMAIL,
        Z,
        "赵敏",
        "zhao.min@example.cn",
        "投诉:客服电话一直无人接听",
        (
            _in(
                "你们好,\n\n我昨天下午连续打了五次客服电话,每次都响很久没人接,最后转到语音信箱。"
                "我的订单(51033)地址填错了,急需修改。这样的服务让人很失望。\n\n赵敏"
            ),
            _note(
                "zhang.min",
                "昨天 14:00-16:00 电话排队超时,三声内接听率只有 62%。已安排增加下午班次。先帮客户改地址。",
            ),
            _out(
                "zhang.min",
                "赵女士您好:\n\n非常抱歉昨天没能及时接听您的电话,这是我们的失职。"
                "您订单 51033 的收货地址已修改为您邮件中的新地址,包裹尚未发出,不会受到影响。"
                "我们已增加下午的值班人员,避免再次发生类似情况。",
            ),
        ),
        assignee="zhang.min",
        tags=("complaint", "phone"),
        priority=Priority.URGENT,
    ),
    Scenario(
        EMAIL,
        Z,
        "孙丽",
        "sun.li@example.cn",
        "发票抬头填写错误,需要重开",
        (
            _in(
                "您好,我上周的订单(50719)发票抬头写成了个人姓名,应该是“杭州云杉科技有限公司”,"
                "麻烦帮忙重新开具,谢谢。\n\n孙丽"
            ),
            _note("wang.fang", "原发票需先红冲,等财务系统月结后(周一)才能重开。"),
        ),
        assignee="wang.fang",
        tags=("invoice",),
        status=SNOOZED,
        snooze_hours=50,
    ),
    Scenario(
        SMS,
        E,
        "Ben Carter",
        "+12025550143",
        None,
        (
            _in(
                "Hi, my delivery window for order 48877 was 2-4pm but nobody came. Is it still coming today?"
            ),
            _out(
                "james.okafor",
                "Hi Ben, sorry for the wait. The driver is running late and will be "
                "with you by 5:30pm today. James, Lumen Home",
            ),
            _in("ok thanks, got it now"),
        ),
        assignee="james.okafor",
        tags=("delivery",),
        status=RESOLVED,
    ),
    Scenario(
        SMS,
        E,
        "Hannah Wright",
        "+447911123456",
        None,
        (_in("Hello, can I still change the delivery address for order 49002? We are moving on Saturday."),),
        tags=("address-change",),
        priority=Priority.HIGH,
    ),
    Scenario(
        SMS,
        Z,
        "周杰",
        "+8613800138000",
        None,
        (
            _in("你好,我的快递显示已签收,但我没有收到。订单号 50311。"),
            _out(
                "li.wei",
                "周先生您好,已为您联系快递员核实签收情况,今天 18:00 前短信回复您。李伟(蓝湾家居客服)",
            ),
        ),
        assignee="li.wei",
        tags=("delivery", "lost-parcel"),
    ),
    Scenario(
        SMS,
        Z,
        "吴婷",
        "+8613912345678",
        None,
        (
            _in("请问退款什么时候到账?订单 50455,已经退货一周了。"),
            _out(
                "wang.fang",
                "吴女士您好,您的退款 256 元已于今天退回原支付账户,预计 1-3 个工作日"
                "到账。王芳(蓝湾家居财务部)",
            ),
            _in("好的,谢谢"),
        ),
        assignee="wang.fang",
        tags=("refund",),
        status=RESOLVED,
    ),
    Scenario(
        WA,
        E,
        "Lucas Meyer",
        "+14155550132",
        None,
        (
            _in("Hello! Is the oak bookshelf (model Fjord, 180 cm) back in stock?"),
            _out(
                "emma.clarke",
                "Hello Lucas, thank you for asking. The Fjord bookshelf is back in "
                "stock from Monday, and you can order it on our website now. Emma, Lumen Home",
            ),
        ),
        assignee="emma.clarke",
        tags=("stock",),
        status=RESOLVED,
    ),
    Scenario(
        WA,
        E,
        "Chloe Martin",
        "+61412345678",
        None,
        (
            _in(
                "Hi, I was charged twice for order #48650, AUD 219 each time. Can you refund one "
                "of them please?"
            ),
            _note(
                "james.okafor",
                "Payment provider shows one capture and one authorisation hold; the "
                "hold expires by itself within 5 days. Explain, no refund needed.",
            ),
            _out(
                "james.okafor",
                "Hi Chloe, thanks for checking. You were charged once; the second "
                "amount is a temporary hold from your bank that disappears within 5 days. If it is "
                "still there on Monday, message us and we will take it up with the bank. James",
            ),
        ),
        assignee="james.okafor",
        tags=("billing", "double-charge"),
        priority=Priority.HIGH,
    ),
    Scenario(
        WA,
        Z,
        "郑浩",
        "+8618612345678",
        None,
        (
            _in("你好,我买的空气净化器 AP-300 的滤网在哪里可以买到?"),
            _out(
                "li.wei",
                "郑先生您好,AP-300 的原装滤网在我们官网“配件”栏目有售,型号 F-300,建议每 6 个月更换一次。李伟",
            ),
            _in("找到了,谢谢!"),
        ),
        assignee="li.wei",
        tags=("parts",),
        status=RESOLVED,
    ),
    Scenario(
        WA,
        Z,
        "黄蕾",
        "+85291234567",
        None,
        (_in("您好,我的订单能寄到香港吗?运费大概多少?"),),
        tags=("shipping",),
    ),
    Scenario(
        VOICE,
        E,
        "Noah Evans",
        "+12125550190",
        None,
        (
            _in(
                "Call transcript (3 min 12 s)\nCaller: Hi, I'm calling about the refund for order "
                "47312. I sent the sofa cover back two weeks ago.\nAgent (James): Thank you, Mr Evans. "
                "I can see the return arrived on Tuesday. I need to confirm the amount with our "
                "billing team; may I call you back today before 5 pm on this number?\nCaller: Yes, "
                "that's fine.\nAgent (James): Thank you. To confirm: refund for order 47312, callback "
                "today before 5 pm."
            ),
            _note(
                "james.okafor",
                "Call summary: refund of £39.00 for order 47312 approved by "
                "billing. Callback promised before 17:00 today.",
            ),
        ),
        assignee="james.okafor",
        tags=("refund", "callback"),
        status=PENDING,
    ),
    Scenario(
        VOICE,
        Z,
        "林峰",
        "+8613800138001",
        None,
        (
            _in(
                "通话记录(2 分 40 秒)\n来电人:你好,我想投诉一下,昨天送货的师傅把包装箱直接扔在门口"
                ",也没打电话通知。\n坐席(李伟):您好,这里是蓝湾家居客服部,我是李伟。非常抱歉给您带来"
                "不好的体验。请问商品有没有损坏?\n来电人:暂时没发现。\n坐席(李伟):好的,我会把情况"
                "反馈给物流公司,并在今天内回电告诉您处理结果。"
            ),
            _note(
                "li.wei",
                "通话小结:客户投诉送货员未通知、放在门口;商品完好。已向物流公司投诉,"
                "16:10 回电告知处理结果,客户表示满意。",
            ),
        ),
        assignee="li.wei",
        tags=("complaint", "courier"),
        status=RESOLVED,
    ),
    Scenario(
        VMAIL,
        E,
        "Grace Liu",
        "+14165550123",
        None,
        (
            _in(
                "Voicemail (0:41), transcribed automatically:\nHi, this is Grace Liu, order number "
                "49120. I'd like to know whether I can still cancel it before it ships. Please call me "
                "back on 416 555 0123, best after 6 pm. Thanks."
            ),
            _note(
                "emma.clarke",
                "Called back at 18:20. Order 49120 cancelled before dispatch; refund of CAD 145.00 issued.",
            ),
        ),
        assignee="emma.clarke",
        tags=("cancellation", "callback"),
        status=RESOLVED,
    ),
    Scenario(
        VMAIL,
        Z,
        "何静",
        "+862155550000",
        None,
        (
            _in(
                "语音留言(0:36,自动转写):\n您好,我是何静,订单号 50990。想问一下发票什么时候能寄出,"
                "麻烦回电 021-5555 0000,工作日上午都方便。谢谢。"
            ),
        ),
        assignee="wang.fang",
        tags=("invoice", "callback"),
    ),
    Scenario(
        FAX,
        E,
        "Ahmed Hassan",
        "+12025550178",
        "Purchase order PO-7781",
        (
            _in(
                "FAX - 2 pages\nTo: Lumen Home Ltd, Accounts\nFrom: Ahmed Hassan, Purchasing, "
                "Hassan Building Supplies, +1 202 555 0178\nRe: Purchase order PO-7781\n\nPlease "
                "send a pro-forma invoice for 40 x Fjord bookshelf and 25 x Aalto desk chair, "
                "delivery to our Washington DC warehouse. Payment by bank transfer on receipt of "
                "the pro-forma."
            ),
            _out(
                "james.okafor",
                "Dear Mr Hassan,\n\nThank you for your purchase order PO-7781. The "
                "pro-forma invoice PF-2026-118 for USD 14,460.00 follows on the next page. Delivery "
                "takes 10 working days from receipt of payment.\n\nKind regards,",
            ),
            _note("james.okafor", "Waiting for the customer's payment before booking the delivery."),
        ),
        assignee="james.okafor",
        tags=("b2b", "invoice"),
        status=SNOOZED,
        snooze_hours=30,
    ),
    Scenario(
        FAX,
        Z,
        "马超",
        "+862155550001",
        "对账单差异",
        (
            _in(
                "传真 共 1 页\n致:蓝湾家居 财务部\n发自:华东建材贸易有限公司 采购部 马超,"
                "电话 021-5555 0001\n事由:10 月对账单差异\n\n贵司 10 月对账单金额为 48,600.00 元,"
                "我司记录为 46,200.00 元,差额 2,400.00 元。请核对后回复。"
            ),
            _note("wang.fang", "差额为 10 月 28 日的退货(2,400 元)未在对账单中冲减。"),
            _out(
                "wang.fang",
                "马先生您好:\n\n经核对,差额 2,400.00 元为 10 月 28 日退货款,"
                "未在对账单中冲减,系我方疏漏,特此致歉。更正后的对账单金额为 46,200.00 元,"
                "与贵司记录一致,随本传真附上。",
            ),
        ),
        assignee="wang.fang",
        tags=("b2b", "statement"),
    ),
    Scenario(
        CHAT,
        E,
        "Jess Thompson",
        "visitor-7c21e0",
        None,
        (
            _in("hi"),
            _in("where is my order 49210? it says delivered yesterday but i can't find it"),
            _out(
                "james.okafor",
                "Hi Jess, thanks for waiting. The driver's photo shows the parcel "
                "was handed to your neighbour at number 14. Could you check with them?",
            ),
            _in("ok, found it with my neighbour, thanks!"),
        ),
        assignee="james.okafor",
        tags=("delivery",),
        status=RESOLVED,
    ),
    Scenario(
        CHAT,
        E,
        "Mark Davies",
        "visitor-a91f33",
        None,
        (
            _in("Do you price match? I've seen the Aalto desk chair £20 cheaper elsewhere."),
            _out(
                "emma.clarke",
                "Hello Mark, yes, we match the price of UK retailers for the same "
                "item in stock. Send us the link and we will adjust your order.",
            ),
        ),
        assignee="emma.clarke",
        tags=("sales",),
    ),
    Scenario(
        CHAT,
        Z,
        "小张",
        "visitor-5be8d2",
        None,
        (
            _in("在吗?我想问一下会员积分怎么用"),
            _out(
                "li.wei",
                "您好,在的。结算时勾选“使用积分”即可抵扣,100 积分抵 1 元,单笔最多抵扣订单金额的 20%。",
            ),
            _in("明白了,谢谢"),
        ),
        assignee="li.wei",
        tags=("loyalty",),
        status=RESOLVED,
    ),
    Scenario(
        CHAT,
        Z,
        "Lily 陈",
        "visitor-0d4c77",
        None,
        (
            _in("我刚下单付款了,但是订单状态还是“待支付”,钱已经扣了"),
            _note("wang.fang", "支付回调延迟,支付平台流水号已核实到账,手动确认订单 51302。"),
            _out(
                "wang.fang",
                "您好,非常抱歉让您担心。您的付款已到账,订单 51302 已确认,状态稍后会更新为“待发货”。",
            ),
        ),
        assignee="wang.fang",
        tags=("payment",),
        priority=Priority.HIGH,
    ),
    Scenario(
        CHAT,
        E,
        "Oliver Scott",
        "visitor-e40b19",
        None,
        (_in("Hi, the assembly instructions for the Fjord bookshelf are missing step 7. Is there a PDF?"),),
        tags=("product",),
    ),
)


def signature(agent: DemoAgent, language: Language) -> str:
    """An e-mail and fax signature: name, title, address and phone."""
    title = agent.title_zh if language == "zh" else agent.title_en
    return f"-- \n{agent.display_name}\n{title}\n{COMPANY[language]}\n{PHONE[language]}"


def reply_text(channel: ChannelKind, language: Language, agent: DemoAgent, text: str) -> str:
    """The reply as sent: formal channels get a closing and the agent's signature."""
    if channel not in FORMAL:
        return text
    if language == "zh":
        text = f"{text}\n\n此致\n敬礼"
    return f"{text}\n{signature(agent, language)}"


def _gaps(rng: random.Random, scenario: Scenario) -> list[timedelta]:
    gaps = [timedelta(0)]
    for before, after in zip(scenario.steps, scenario.steps[1:], strict=False):
        if after.kind == NOTE:
            minutes = rng.uniform(4, 45)
        elif after.kind == OUT:
            minutes = rng.uniform(6, 200)
        elif before.kind == IN:
            minutes = rng.uniform(1, 4)
        else:
            minutes = rng.uniform(12, 420)
        gaps.append(timedelta(minutes=minutes))
    return gaps


def _timeline(rng: random.Random, scenario: Scenario, now: datetime) -> list[datetime]:
    gaps = _gaps(rng, scenario)
    span = sum(gaps, timedelta())
    quiet = timedelta(hours=rng.uniform(0.1, 30) if scenario.status is None else rng.uniform(2, 110))
    at = now - quiet - span - timedelta(minutes=15)
    times = []
    for gap in gaps:
        at += gap
        times.append(at)
    return times


def _inbound(
    index: int, number: int, scenario: Scenario, at: datetime, text: str, first_ref: str | None
) -> InboundMessage:
    if scenario.channel is ChannelKind.EMAIL:
        domain = scenario.address.partition("@")[2]
        external_id = f"<demo-{index:02d}-{number}@{domain}>"
        subject = scenario.subject if number == 1 else f"Re: {scenario.subject}"
        refs: tuple[str, ...] = (first_ref,) if first_ref else ()
        own: tuple[str, ...] = (external_id,)
    else:
        external_id = f"demo-{index:02d}-{number}"
        subject = scenario.subject if number == 1 else None
        refs, own = (), ()
    kind = scenario.channel.identity_kind
    assert kind is not None, "demo scenarios use channels with one identity kind"
    return InboundMessage(
        channel=scenario.channel,
        channel_account=ACCOUNT[scenario.channel],
        external_id=external_id,
        sender=Identity.of(kind, scenario.address),
        sender_name=scenario.customer,
        text=text,
        subject=subject,
        received_at=at,
        reply_refs=refs,
        own_refs=own,
        language=scenario.language,
        meta={"demo": True},
    )


async def _teams(services: Services, summary: DemoSummary) -> dict[str, Team]:
    existing = {t.name: t for t in await services.directory.teams()}
    for team in TEAMS:
        if team.name not in existing:
            existing[team.name] = await services.directory.add_team(team.name, team.department)
            summary.teams.append(team.name)
    return existing


async def _agents(services: Services, teams: dict[str, Team], summary: DemoSummary) -> dict[str, int]:
    ids: dict[str, int] = {}
    for spec in AGENTS:
        try:
            agent = await services.directory.agent_by_name(spec.username)
        except NotFound:
            password = secrets.token_urlsafe(12)
            agent = await services.directory.add_agent(
                spec.username,
                password,
                spec.role,
                display_name=spec.display_name,
                language=spec.language,
                availability=spec.availability,
            )
            summary.agents[spec.username] = password
        else:
            summary.agents.setdefault(spec.username, None)
        for team in spec.teams:
            await services.directory.add_member(teams[team].id, agent.id)
        ids[spec.username] = agent.id
    return ids


async def _scenario(
    services: Services,
    clock: SettableClock,
    index: int,
    scenario: Scenario,
    times: list[datetime],
    agents: dict[str, int],
    supervisor: int,
    now: datetime,
    summary: DemoSummary,
) -> None:
    cid: int | None = None
    first_ref: str | None = None
    inbound = 0
    for number, (step, at) in enumerate(zip(scenario.steps, times, strict=True), start=1):
        clock.now = at
        if step.kind == IN:
            inbound += 1
            message = _inbound(index, inbound, scenario, at, step.text, first_ref)
            result = (await services.inbox.ingest_many([message]))[0]
            if result.duplicate and cid is None:
                summary.skipped += 1
                return
            summary.messages += 1
            if cid is None:
                cid = result.conversation_id
                first_ref = message.own_refs[0] if message.own_refs else None
                await _triage(services, clock, cid, scenario, agents, supervisor)
            continue
        assert cid is not None
        assert step.agent is not None
        agent = _AGENT[step.agent]
        if step.kind == OUT:
            subject = (
                f"Re: {scenario.subject} [#{cid}]"
                if scenario.channel is ChannelKind.EMAIL and scenario.subject
                else None
            )
            await services.outbox.reply(
                cid,
                reply_text(scenario.channel, scenario.language, agent, step.text),
                agent_id=agents[step.agent],
                subject=subject,
                idempotency_key=f"demo-{index:02d}-{number}",
                meta={"demo": True},
            )
            summary.replies += 1
        else:
            await services.inbox.add_note(cid, agents[step.agent], step.text)
            summary.notes += 1
    assert cid is not None
    clock.now = times[-1] + timedelta(minutes=3)
    by = agents.get(scenario.assignee or "")
    if scenario.status is ConversationStatus.SNOOZED:
        until = now + timedelta(hours=scenario.snooze_hours)
        await services.inbox.set_status(cid, scenario.status, by=by, snoozed_until=until)
    elif scenario.status is not None:
        await services.inbox.set_status(cid, scenario.status, by=by)
    final = await services.inbox.conversation(cid)
    summary.conversations[scenario.channel.value] += 1
    summary.languages[scenario.language] += 1
    summary.statuses[final.status.value] += 1


async def _triage(
    services: Services,
    clock: SettableClock,
    cid: int,
    scenario: Scenario,
    agents: dict[str, int],
    supervisor: int,
) -> None:
    clock.now += timedelta(seconds=30)
    if scenario.tags:
        await services.inbox.set_tags(cid, add=scenario.tags, by=supervisor)
    if scenario.priority is not Priority.NORMAL:
        await services.inbox.set_priority(cid, scenario.priority, by=supervisor)
    if scenario.assignee:
        await services.inbox.assign(cid, agents[scenario.assignee], by=supervisor)


async def populate(services: Services, clock: SettableClock, *, seed: int = SEED) -> DemoSummary:
    """File the sample teams, agents and conversations through the hub's own services."""
    now = clock.now
    rng = random.Random(seed)  # noqa: S311 - timing of sample data, not a secret
    summary = DemoSummary()
    teams = await _teams(services, summary)
    agents = await _agents(services, teams, summary)
    supervisor = agents["emma.clarke"]
    plans = [_timeline(rng, s, now) for s in SCENARIOS]
    for index, (scenario, times) in enumerate(zip(SCENARIOS, plans, strict=True), start=1):
        await _scenario(services, clock, index, scenario, times, agents, supervisor, now, summary)
    clock.now = now
    return summary


async def conversation_count(db: Database) -> int:
    """How many conversations the hub holds."""
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(schema.conversations))).scalar_one())


async def run(config: Config, *, if_empty: bool = False, now: datetime | None = None) -> DemoSummary | None:
    """Open the hub's store and populate it; None when `if_empty` and it holds conversations."""
    clock = SettableClock(now or utcnow())
    services = await open_services(config, clock=clock)
    try:
        if if_empty and await conversation_count(services.db):
            return None
        return await populate(services, clock)
    finally:
        await services.close()
