//! The lab network: a namespace with a bridge, one tap per VM and the BMC addresses; removed on drop.
