PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE core(
    core_id INTEGER PRIMARY KEY AUTOINCREMENT,
	x INTEGER NOT NULL,
	y INTEGER NOT NULL,
	processor INTEGER NOT NULL,
	core_name STRING);
CREATE TABLE core_provenance(
    cp_id INTEGER PRIMARY KEY AUTOINCREMENT,
	core_id INTEGER NOT NULL
		REFERENCES core(core_id) ON DELETE RESTRICT,
    description STRING NOT NULL,
    the_value INTEGER NOT NULL);
CREATE TABLE router_provenance(
    chip_id INTEGER PRIMARY KEY AUTOINCREMENT,
    x INTEGER NOT NULL,
    y INTEGER NOT NULL,
    description STRING NOT NULL,
    the_value INTEGER NOT NULL,
    expected INTEGER NOT NULL);
CREATE TABLE power_provenance(
    power_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run INTEGER NOT NULL,
    description STRING NOT NULL,
    the_value FLOAT NOT NULL);
CREATE TABLE reports(
    message STRING NOT NULL);
INSERT INTO core VALUES(1,0,0,1,'input(0:63)');
INSERT INTO core VALUES(2,0,0,2,'lif1(0:127)');
INSERT INTO core VALUES(3,0,0,3,'li1(0:9)');
INSERT INTO core_provenance VALUES(1,1,'Times_the_transmission_of_spikes_overran',0);
INSERT INTO core_provenance VALUES(2,1,'Times_the_callback_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(3,1,'Times_the_dma_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(4,1,'Times_the_user_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(5,1,'Times_the_timer_tic_over_ran',0);
INSERT INTO core_provenance VALUES(6,1,'Max_number_of_times_timer_tic_over_ran',0);
INSERT INTO core_provenance VALUES(7,2,'Times_the_transmission_of_spikes_overran',0);
INSERT INTO core_provenance VALUES(8,2,'Times_the_callback_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(9,2,'Times_the_dma_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(10,2,'Times_the_user_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(11,2,'Times_the_timer_tic_over_ran',0);
INSERT INTO core_provenance VALUES(12,2,'Max_number_of_times_timer_tic_over_ran',0);
INSERT INTO core_provenance VALUES(13,2,'Total_pre_synaptic_events',401217);
INSERT INTO core_provenance VALUES(14,2,'Times_synaptic_weights_have_saturated',0);
INSERT INTO core_provenance VALUES(15,2,'Times_plastic_synaptic_weights_have_saturated',0);
INSERT INTO core_provenance VALUES(16,2,'Number of failed pop table searches',0);
INSERT INTO core_provenance VALUES(17,2,'N bit fields not able to be read into DTCM',0);
INSERT INTO core_provenance VALUES(18,2,'Invalid Master Pop hits',0);
INSERT INTO core_provenance VALUES(19,2,'How many packets were filtered by the bitfield filterer.',0);
INSERT INTO core_provenance VALUES(20,2,'Skipped synapses',0);
INSERT INTO core_provenance VALUES(21,2,'Late spikes',0);
INSERT INTO core_provenance VALUES(22,2,'Max late spike',0);
INSERT INTO core_provenance VALUES(23,3,'Times_the_transmission_of_spikes_overran',0);
INSERT INTO core_provenance VALUES(24,3,'Times_the_callback_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(25,3,'Times_the_dma_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(26,3,'Times_the_user_queue_was_overloaded',0);
INSERT INTO core_provenance VALUES(27,3,'Times_the_timer_tic_over_ran',0);
INSERT INTO core_provenance VALUES(28,3,'Max_number_of_times_timer_tic_over_ran',0);
INSERT INTO core_provenance VALUES(29,3,'Total_pre_synaptic_events',3904);
INSERT INTO core_provenance VALUES(30,3,'Times_synaptic_weights_have_saturated',0);
INSERT INTO core_provenance VALUES(31,3,'Times_plastic_synaptic_weights_have_saturated',0);
INSERT INTO core_provenance VALUES(32,3,'Number of failed pop table searches',0);
INSERT INTO core_provenance VALUES(33,3,'N bit fields not able to be read into DTCM',0);
INSERT INTO core_provenance VALUES(34,3,'Invalid Master Pop hits',0);
INSERT INTO core_provenance VALUES(35,3,'How many packets were filtered by the bitfield filterer.',0);
INSERT INTO core_provenance VALUES(36,3,'Skipped synapses',0);
INSERT INTO core_provenance VALUES(37,3,'Late spikes',0);
INSERT INTO core_provenance VALUES(38,3,'Max late spike',0);
INSERT INTO router_provenance VALUES(1,0,0,'RunLocal_Multicast_Packets',3602,1);
INSERT INTO router_provenance VALUES(2,0,0,'RunExternal_Multicast_Packets',0,1);
INSERT INTO router_provenance VALUES(3,0,0,'RunDropped_Multicast_Packets',0,1);
INSERT INTO router_provenance VALUES(4,0,0,'RunDropped_Multicast_Packets_via_local_transmission',0,1);
INSERT INTO router_provenance VALUES(5,0,0,'Rundefault_routed_external_multicast_packets',0,1);
INSERT INTO router_provenance VALUES(6,0,0,'RunEntries',3,1);
INSERT INTO router_provenance VALUES(7,0,0,'RunLocal_P2P_Packets',12,1);
INSERT INTO router_provenance VALUES(8,0,0,'RunExternal_P2P_Packets',0,1);
INSERT INTO router_provenance VALUES(9,0,0,'RunLocal_NN_Packets',0,1);
INSERT INTO router_provenance VALUES(10,0,0,'RunExternal_NN_Packets',0,1);
INSERT INTO router_provenance VALUES(11,0,0,'RunLocal_FR_Packets',0,1);
INSERT INTO router_provenance VALUES(12,0,0,'RunExternal_FR_Packets',0,1);
INSERT INTO router_provenance VALUES(13,1,0,'RunLocal_Multicast_Packets',0,1);
INSERT INTO router_provenance VALUES(14,1,0,'RunExternal_Multicast_Packets',0,1);
INSERT INTO router_provenance VALUES(15,1,0,'RunDropped_Multicast_Packets',0,1);
INSERT INTO router_provenance VALUES(16,1,0,'RunDropped_Multicast_Packets_via_local_transmission',0,1);
INSERT INTO router_provenance VALUES(17,1,0,'Rundefault_routed_external_multicast_packets',0,1);
INSERT INTO router_provenance VALUES(18,1,0,'RunEntries',0,1);
INSERT INTO router_provenance VALUES(19,1,0,'RunLocal_P2P_Packets',12,1);
INSERT INTO router_provenance VALUES(20,1,0,'RunExternal_P2P_Packets',0,1);
INSERT INTO router_provenance VALUES(21,1,0,'RunLocal_NN_Packets',0,1);
INSERT INTO router_provenance VALUES(22,1,0,'RunExternal_NN_Packets',0,1);
INSERT INTO router_provenance VALUES(23,1,0,'RunLocal_FR_Packets',0,1);
INSERT INTO router_provenance VALUES(24,1,0,'RunExternal_FR_Packets',0,1);
INSERT INTO power_provenance VALUES(1,1,'N_chips',48);
INSERT INTO power_provenance VALUES(2,1,'N_cores',54);
INSERT INTO power_provenance VALUES(3,1,'N_boards',1);
INSERT INTO power_provenance VALUES(4,1,'N_frames',0);
INSERT INTO power_provenance VALUES(5,1,'Exec time (seconds)',0.184);
INSERT INTO power_provenance VALUES(6,1,'Mapping time (seconds)',1.732);
INSERT INTO power_provenance VALUES(7,1,'Loading time (seconds)',4.215);
INSERT INTO power_provenance VALUES(8,1,'Saving time (seconds)',0.318);
INSERT INTO power_provenance VALUES(9,1,'Other time (seconds)',2.907);
INSERT INTO power_provenance VALUES(10,1,'Exec energy (Joules)',4.957331601999999);
INSERT INTO power_provenance VALUES(11,1,'Mapping energy (Joules)',46.48688);
INSERT INTO power_provenance VALUES(12,1,'Loading energy (Joules)',113.1519);
INSERT INTO power_provenance VALUES(13,1,'Saving energy (Joules)',8.53922);
INSERT INTO power_provenance VALUES(14,1,'Other energy (Joules)',78.02388);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('core',3);
INSERT INTO sqlite_sequence VALUES('core_provenance',38);
INSERT INTO sqlite_sequence VALUES('router_provenance',24);
INSERT INTO sqlite_sequence VALUES('power_provenance',14);
COMMIT;
