/** A small DBC used by the link and CLI tests: an extended-id message with a value table, a multiplexed one, a 12-byte (CAN FD) one. */
export const GEARBOX_DBC = `VERSION ""
NS_ :
BS_:
BU_: TCU
BO_ 2566844926 TC1: 8 TCU
 SG_ Gear : 0|4@1+ (1,0) [0|7] "" Vector__XXX
 SG_ OilTemp : 8|8@1+ (1,-40) [-40|150] "degC" Vector__XXX
BO_ 1792 Diag: 8 TCU
 SG_ Page M : 7|8@0+ (1,0) [0|0] "" Vector__XXX
 SG_ Odometer m1 : 15|32@0+ (0.1,0) [0|429496729.5] "km" Vector__XXX
 SG_ Serial m2 : 15|32@0+ (1,0) [0|0] "" Vector__XXX
BO_ 1793 Wide: 12 TCU
 SG_ Tail : 88|8@1+ (1,0) [0|0] "" Vector__XXX
CM_ BO_ 1792 "diagnostic pages";
VAL_ 2566844926 Gear 15 "Invalid" 0 "Neutral" ;
`;
