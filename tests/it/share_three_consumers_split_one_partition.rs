//! Queue semantics on one partition: three share consumers split the records between them,
//! and together process every record exactly once when all acknowledge.

use crate::common;
use crate::share_support;

#[test]
fn three_share_consumers_split_one_partition_exactly_once() {
    if !share_support::share_client_available() {
        return;
    }
    let broker = common::Broker::start();
    share_support::run_scenario("split", broker.bootstrap(), &[]);
}
