//! Your own types in and out: an `Order` (with a `Vec` of `Line`s and an enum field) goes in,
//! an `Invoice` with a `Status` enum comes out, and the tax table is an extra argument that
//! each worker receives once and the job borrows (`&TaxTable`).
//!
//! ```text
//! cargo run --release --example structs [ORDERS] [PROCESSES]
//! ```
//!
//! It invoices the orders in a pool of worker processes, prints a few invoices and a summary,
//! checks that running in this process (`run_single_processed`) gives the same invoices, and
//! shows the error an invalid order (one with no lines) stops the job with.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spychro::Job;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Category {
    Food,
    Books,
    Electronics,
    Clothing,
}

/// An amount in cents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Money(u64);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    sku: String,
    category: Category,
    quantity: u32,
    unit_price: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: u32,
    customer: String,
    /// Days since the shop opened.
    issued_on: u32,
    paid_on: Option<u32>,
    dispute: Option<String>,
    lines: Vec<Line>,
}

/// Rates per category in basis points (1/100 of a percent), payment terms, late fees.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaxTable {
    rates: BTreeMap<Category, u32>,
    due_after_days: u32,
    late_fee_per_day: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Status {
    Paid { after_days: u32 },
    Due { in_days: u32 },
    Overdue { days: u32 },
    Disputed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Invoice {
    order: u32,
    customer: String,
    subtotal: Money,
    tax: Money,
    late_fee: Money,
    total: Money,
    status: Status,
}

/// Invoices one order as of day `today`. An order with no lines is an error.
#[spychro::job]
fn invoice(order: Order, taxes: &TaxTable, today: u32) -> Result<Invoice, String> {
    if order.lines.is_empty() {
        return Err(format!("order #{} has no lines", order.id));
    }
    let (mut subtotal, mut tax) = (0, 0);
    for line in &order.lines {
        let amount = line.unit_price.0 * u64::from(line.quantity);
        let rate = taxes.rates.get(&line.category).copied().unwrap_or(0);
        subtotal += amount;
        tax += (amount * u64::from(rate)).div_ceil(10_000);
    }
    let due_on = order.issued_on + taxes.due_after_days;
    let status = match (order.dispute, order.paid_on) {
        (Some(reason), _) => Status::Disputed(reason),
        (None, Some(day)) => Status::Paid {
            after_days: day - order.issued_on,
        },
        (None, None) if today <= due_on => Status::Due {
            in_days: due_on - today,
        },
        (None, None) => Status::Overdue {
            days: today - due_on,
        },
    };
    let late_fee = match status {
        Status::Overdue { days } => taxes.late_fee_per_day.0 * u64::from(days),
        _ => 0,
    };
    Ok(Invoice {
        order: order.id,
        customer: order.customer,
        subtotal: Money(subtotal),
        tax: Money(tax),
        late_fee: Money(late_fee),
        total: Money(subtotal + tax + late_fee),
        status,
    })
}

fn main() -> Result<(), spychro::Error> {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let processes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });

    let today = 400;
    let taxes = TaxTable {
        rates: BTreeMap::from([
            (Category::Food, 550),
            (Category::Books, 0),
            (Category::Electronics, 2000),
            (Category::Clothing, 1200),
        ]),
        due_after_days: 30,
        late_fee_per_day: Money(25),
    };
    let orders = make_orders(n, today);

    let t = Instant::now();
    let invoices = Job::new(invoice, orders.clone())
        .args((taxes.clone(), today))
        .processes(processes)
        .run_multi_processed()?;
    println!(
        "invoiced {} orders in {:.2?} with {processes} worker processes",
        invoices.len(),
        t.elapsed()
    );

    println!(
        "{:>6}  {:<10} {:>10} {:>9} {:>9} {:>10}  status",
        "order", "customer", "subtotal", "tax", "late fee", "total"
    );
    for inv in invoices.iter().take(6) {
        println!(
            "{:>6}  {:<10} {:>10} {:>9} {:>9} {:>10}  {}",
            format!("#{}", inv.order),
            inv.customer,
            inv.subtotal,
            inv.tax,
            inv.late_fee,
            inv.total,
            inv.status
        );
    }

    let mut count = [("paid", 0), ("due", 0), ("overdue", 0), ("disputed", 0)];
    for inv in &invoices {
        let k = match inv.status {
            Status::Paid { .. } => 0,
            Status::Due { .. } => 1,
            Status::Overdue { .. } => 2,
            Status::Disputed(_) => 3,
        };
        count[k].1 += 1;
    }
    let count: Vec<String> = count.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let late_fees = Money(invoices.iter().map(|i| i.late_fee.0).sum());
    let total = Money(invoices.iter().map(|i| i.total.0).sum());
    println!(
        "{}; billed {total}, of which late fees {late_fees}",
        count.join(", ")
    );

    // Still an ordinary function, and the same invoices when run in this process.
    assert_eq!(
        invoice(orders[0].clone(), &taxes, today),
        Ok(invoices[0].clone())
    );
    let single = Job::new(invoice, orders.clone())
        .args((taxes.clone(), today))
        .run_single_processed()?;
    assert_eq!(single, invoices);
    println!(
        "run_single_processed gives the same {} invoices",
        single.len()
    );

    // An order with no lines fails the job; the error names the item and the process.
    let mut bad = orders[..5].to_vec();
    bad[3].lines.clear();
    let err = Job::new(invoice, bad)
        .args((taxes, today))
        .processes(processes)
        .run_multi_processed()
        .unwrap_err();
    let failure = err.item().expect("an item failed");
    assert_eq!(
        (failure.index(), failure.message()),
        (3, "order #4 has no lines")
    );
    println!("an order with no lines stops the job:\n  {err}");
    Ok(())
}

/// `n` orders, the same on every run.
fn make_orders(n: u32, today: u32) -> Vec<Order> {
    const CUSTOMERS: [&str; 6] = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark"];
    const CATEGORIES: [Category; 4] = [
        Category::Food,
        Category::Books,
        Category::Electronics,
        Category::Clothing,
    ];
    let mut rng = Rng(42);
    (1..=n)
        .map(|id| {
            let issued_on = rng.below(today as u64) as u32;
            let lines = (0..1 + rng.below(5))
                .map(|_| Line {
                    sku: format!("SKU-{:05}", rng.below(100_000)),
                    category: CATEGORIES[rng.below(4) as usize],
                    quantity: 1 + rng.below(10) as u32,
                    unit_price: Money(99 + rng.below(20_000)),
                })
                .collect();
            let paid_on = (rng.below(3) > 0 && issued_on + 5 < today)
                .then(|| issued_on + 1 + rng.below(u64::from(today - issued_on - 1)) as u32);
            let dispute = (rng.below(40) == 0).then(|| "damaged in transit".to_string());
            Order {
                id,
                customer: CUSTOMERS[rng.below(6) as usize].to_string(),
                issued_on,
                paid_on,
                dispute,
                lines,
            }
        })
        .collect()
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("${}.{:02}", self.0 / 100, self.0 % 100))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Paid { after_days } => write!(f, "paid after {after_days} days"),
            Status::Due { in_days } => write!(f, "due in {in_days} days"),
            Status::Overdue { days } => write!(f, "overdue by {days} days"),
            Status::Disputed(reason) => write!(f, "disputed: {reason}"),
        }
    }
}

/// SplitMix64: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}
